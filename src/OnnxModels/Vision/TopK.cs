namespace Recsys.OnnxModels.Vision;

/// <summary>One class of a classification answer.</summary>
public readonly record struct ClassScore(int Index, string? Label, float Score);

/// <summary>The k best classes of each row of a [N, C] score tensor.</summary>
public static class TopK
{
    public static ClassScore[][] Rows(HostTensor scores, int k, IReadOnlyList<string>? labels)
    {
        if (scores.Rank != 2) throw new InvalidOperationException($"class scores have shape {TensorSignature.Describe(scores.Shape)}, expected [N, C]");
        int n = (int)scores.Shape[0], c = (int)scores.Shape[1];
        k = Math.Min(k, c);
        float[] data = scores.Floats;
        var result = new ClassScore[n][];
        int[] order = new int[c];
        for (int r = 0; r < n; r++)
        {
            int rowStart = r * c;
            for (int i = 0; i < c; i++) order[i] = i;
            // Highest score first; ties keep the lower class index first, as torch.topk does on CPU.
            Array.Sort(order, (a, b) => data[rowStart + b].CompareTo(data[rowStart + a]) is var o && o != 0 ? o : a.CompareTo(b));
            var best = new ClassScore[k];
            for (int i = 0; i < k; i++) best[i] = new ClassScore(order[i], labels is not null && order[i] < labels.Count ? labels[order[i]] : null, data[rowStart + order[i]]);
            result[r] = best;
        }
        return result;
    }
}
