namespace Recsys.OnnxModels.Vision;

/// <summary>One detected object: box corners (x1, y1, x2, y2) in pixels of the image the model saw, class, score.</summary>
public readonly record struct Detection(float X1, float Y1, float X2, float Y2, long Class, string? Label, float Score)
{
    /// <summary>The graph's boxes/labels/scores of one image, in the graph's order (its NMS already ran).</summary>
    public static Detection[] FromOutputs(HostTensor boxes, HostTensor labels, HostTensor scores, IReadOnlyList<string>? names)
    {
        int n = (int)scores.Length;
        if (boxes.Length != 4L * n || labels.Length != n) throw new InvalidOperationException($"detection outputs disagree: {boxes.Length / 4} boxes, {labels.Length} labels, {n} scores");
        float[] b = boxes.Floats, s = scores.Floats;
        long[] l = labels.Longs;
        var result = new Detection[n];
        for (int i = 0; i < n; i++)
        {
            string? label = names is not null && l[i] >= 0 && l[i] < names.Count ? names[(int)l[i]] : null;
            result[i] = new Detection(b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3], l[i], label, s[i]);
        }
        return result;
    }

    public Detection Scaled(float sx, float sy) => this with { X1 = X1 * sx, Y1 = Y1 * sy, X2 = X2 * sx, Y2 = Y2 * sy };
}
