namespace Recsys.DenseCompute.Accuracy;

/// <summary>The accuracy measures of Park et al. (2018) and production CTR practice.</summary>
public static class ClickMetrics
{
    private const double Epsilon = 1e-7;

    /// <summary>Area under the ROC curve: the chance a random positive outranks a random negative (ties count half).</summary>
    public static double Auc(ReadOnlySpan<double> scores, ReadOnlySpan<byte> labels)
    {
        if (scores.Length != labels.Length) throw new ArgumentException($"{scores.Length} scores for {labels.Length} labels", nameof(labels));
        int n = scores.Length;
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        double[] copy = scores.ToArray();
        Array.Sort(copy, order);
        // Rank-sum (Mann-Whitney U) with tied scores sharing their mean rank.
        double positiveRanks = 0;
        long positives = 0;
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && copy[j + 1] == copy[i]) j++;
            double meanRank = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++)
            {
                if (labels[order[k]] != 0)
                {
                    positiveRanks += meanRank;
                    positives++;
                }
            }
            i = j + 1;
        }
        long negatives = n - positives;
        if (positives == 0 || negatives == 0) throw new ArgumentException("AUC needs both positive and negative labels", nameof(labels));
        return (positiveRanks - positives * (positives + 1) / 2.0) / ((double)positives * negatives);
    }

    /// <summary>Mean binary cross-entropy in nats, probabilities clamped to [1e-7, 1 - 1e-7].</summary>
    public static double LogLoss(ReadOnlySpan<double> probabilities, ReadOnlySpan<byte> labels)
    {
        if (probabilities.Length != labels.Length) throw new ArgumentException($"{probabilities.Length} probabilities for {labels.Length} labels", nameof(labels));
        if (labels.Length == 0) throw new ArgumentException("no samples", nameof(labels));
        double sum = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            double p = Math.Clamp(probabilities[i], Epsilon, 1 - Epsilon);
            sum -= labels[i] != 0 ? Math.Log(p) : Math.Log(1 - p);
        }
        return sum / labels.Length;
    }

    /// <summary>Log loss divided by the entropy of the base rate: 1.0 is no better than predicting the average CTR.</summary>
    public static double NormalizedEntropy(ReadOnlySpan<double> probabilities, ReadOnlySpan<byte> labels)
    {
        double rate = 0;
        foreach (byte l in labels) rate += l != 0 ? 1 : 0;
        rate /= labels.Length;
        if (rate is <= 0 or >= 1) throw new ArgumentException("normalized entropy needs both positive and negative labels", nameof(labels));
        double baseEntropy = -(rate * Math.Log(rate) + (1 - rate) * Math.Log(1 - rate));
        return LogLoss(probabilities, labels) / baseEntropy;
    }
}
