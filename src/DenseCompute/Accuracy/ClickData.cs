using Recsys.DenseCompute.Dlrm;

namespace Recsys.DenseCompute.Accuracy;

/// <summary>
/// Labelled ranking samples in columns: dense features, one bag of ids per table, a 0/1 label
/// for the first event. <see cref="Calibration"/> maps a model's probability to the scale the
/// labels were drawn on (identity for real data).
/// </summary>
public sealed class ClickData
{
    public ClickData(int denseFeatures, float[] dense, long[][] ids, int[][] offsets, byte[] labels, ScoreCalibration? calibration = null)
    {
        int n = labels.Length;
        if (dense.Length != n * denseFeatures) throw new ArgumentException($"dense holds {dense.Length} values for {n} samples x {denseFeatures} features", nameof(dense));
        if (ids.Length != offsets.Length) throw new ArgumentException($"{ids.Length} id columns for {offsets.Length} offset columns", nameof(offsets));
        for (int t = 0; t < offsets.Length; t++)
        {
            if (offsets[t].Length != n + 1 || offsets[t][n] != ids[t].Length) throw new ArgumentException($"table {t}: offsets do not describe {n} bags over {ids[t].Length} ids", nameof(offsets));
        }
        DenseFeatures = denseFeatures;
        Dense = dense;
        Ids = ids;
        Offsets = offsets;
        Labels = labels;
        Calibration = calibration ?? ScoreCalibration.Identity;
    }

    public int Samples => Labels.Length;
    public int DenseFeatures { get; }
    public float[] Dense { get; }
    public long[][] Ids { get; }
    public int[][] Offsets { get; }
    public byte[] Labels { get; }
    public ScoreCalibration Calibration { get; }

    public double BaseRate => Labels.Length == 0 ? 0 : Labels.Sum(l => (double)l) / Labels.Length;

    /// <summary>Samples [start, start + count) as a batch the model scores.</summary>
    public RankBatch Batch(int start, int count)
    {
        if (start < 0 || count < 1 || start + count > Samples) throw new ArgumentOutOfRangeException(nameof(count), $"samples [{start}, {start + count}) outside 0..{Samples}");
        float[] dense = Dense.AsSpan(start * DenseFeatures, count * DenseFeatures).ToArray();
        var sparse = new SparseFeature[Ids.Length];
        for (int t = 0; t < Ids.Length; t++)
        {
            int[] all = Offsets[t];
            int first = all[start];
            var offsets = new int[count + 1];
            for (int b = 0; b <= count; b++) offsets[b] = all[start + b] - first;
            sparse[t] = new SparseFeature(Ids[t][first..all[start + count]], offsets, null);
        }
        return new RankBatch(count, dense, sparse);
    }
}

/// <summary>
/// A fixed monotone map from a model's probability p to sigmoid(Slope * (logit(p) - Center) + Bias).
/// The synthetic generator draws labels through it; every precision variant is scored through the
/// same map, so their differences are the model's and the map only sets the scale.
/// </summary>
public sealed record ScoreCalibration(double Center, double Slope, double Bias)
{
    public static ScoreCalibration Identity { get; } = new(0, 1, 0);

    public double Apply(double p)
    {
        if (this == Identity) return p;
        double z = Logit(p);
        return 1.0 / (1.0 + Math.Exp(-(Slope * (z - Center) + Bias)));
    }

    internal static double Logit(double p)
    {
        double q = Math.Clamp(p, 1e-12, 1 - 1e-12);
        return Math.Log(q / (1 - q));
    }
}
