using System.Numerics.Tensors;

namespace Recsys.DenseCompute.Quantized;

/// <summary>A clipping range [Min, Max] for uniform quantization (always containing 0).</summary>
public readonly record struct ClipRange(float Min, float Max)
{
    public float Width => Max - Min;
}

/// <summary>
/// The range choices of Park et al. (2018) as pure functions: plain min/max, net-aware ranges
/// (an input that comes out of a ReLU has no negatives worth levels), the L2-error-minimizing clip
/// and the outlier split threshold.
/// </summary>
public static class QuantizationRanges
{
    /// <summary>Histogram bins the L2 search works on.</summary>
    public const int HistogramBins = 2048;

    /// <summary>
    /// [min, max] of the values, widened to contain 0 so that 0 (ReLU's output, the padding)
    /// is exactly representable. <paramref name="nonNegative"/> is the net-aware range [0, max]:
    /// negatives (there are none after a ReLU) do not get levels.
    /// </summary>
    public static ClipRange MinMax(ReadOnlySpan<float> values, bool nonNegative)
    {
        if (values.IsEmpty) return new ClipRange(0, 0);
        float max = MathF.Max(0, TensorPrimitives.Max(values));
        float min = nonNegative ? 0 : MathF.Min(0, TensorPrimitives.Min(values));
        return new ClipRange(min, max);
    }

    /// <summary>Symmetric range [-max|v|, max|v|], the per-channel weight range.</summary>
    public static ClipRange SymmetricMinMax(ReadOnlySpan<float> values)
    {
        float a = values.IsEmpty ? 0 : TensorPrimitives.MaxMagnitude(values);
        a = MathF.Abs(a);
        return new ClipRange(-a, a);
    }

    /// <summary>
    /// The clip range with the least expected squared quantization error for <paramref name="levels"/>
    /// uniform steps (255 for u8, 254 for symmetric s8 [-127, 127]). The min/max range is shrunk by a
    /// factor t in (0, 1] (both ends together, so the zero point stays put); for each candidate t the
    /// error is estimated from a histogram: values inside the range cost step²/12 (uniform rounding
    /// error), clipped values cost their squared distance to the range end. Heavy tails make a
    /// smaller range win: a few clipped outliers cost less than coarser steps for everything else.
    /// </summary>
    public static ClipRange L2Optimal(ReadOnlySpan<float> values, int levels, bool nonNegative, bool symmetric = false)
    {
        if (levels < 1) throw new ArgumentOutOfRangeException(nameof(levels), levels, "need at least one quantization step");
        ClipRange full = symmetric ? SymmetricMinMax(values) : MinMax(values, nonNegative);
        if (full.Width <= 0) return full;

        // Histogram of the values over the full range.
        var counts = new long[HistogramBins];
        double binWidth = full.Width / (double)HistogramBins;
        foreach (float v in values)
        {
            float c = Math.Clamp(v, full.Min, full.Max);
            int b = (int)((c - full.Min) / binWidth);
            counts[Math.Min(b, HistogramBins - 1)]++;
        }

        double bestError = double.MaxValue, bestT = 1;
        for (int step = 1; step <= 200; step++)
        {
            double t = step / 200.0;
            double lo = full.Min * t, hi = full.Max * t;
            double q = (hi - lo) / levels;
            double inRange = q * q / 12;
            double error = 0;
            for (int b = 0; b < HistogramBins; b++)
            {
                if (counts[b] == 0) continue;
                double center = full.Min + ((b + 0.5) * binWidth);
                double d = center > hi ? center - hi : center < lo ? lo - center : 0;
                error += counts[b] * (d > 0 ? d * d : inRange);
            }

            if (error < bestError)
            {
                bestError = error;
                bestT = t;
            }
        }

        return new ClipRange((float)(full.Min * bestT), (float)(full.Max * bestT));
    }

    /// <summary>
    /// The magnitude above which the largest <paramref name="density"/> fraction of values lie: the
    /// outlier split threshold. Weights beyond it go to the sparse outlier part, so the dense main part
    /// gets a range (and a step) set by the bulk of the distribution.
    /// </summary>
    public static float OutlierThreshold(ReadOnlySpan<float> values, double density)
    {
        if (!(density >= 0 && density < 1)) throw new ArgumentOutOfRangeException(nameof(density), density, "outlier density must be in [0, 1)");
        if (values.IsEmpty) return 0;
        var magnitudes = new float[values.Length];
        TensorPrimitives.Abs(values, magnitudes);
        Array.Sort(magnitudes);
        int keep = (int)Math.Ceiling(values.Length * (1 - density));
        return magnitudes[Math.Clamp(keep, 1, values.Length) - 1];
    }

    /// <summary>
    /// The actual squared error of quantizing <paramref name="values"/> to <paramref name="levels"/>
    /// steps on <paramref name="range"/> (clamp, round to the nearest level, dequantize).
    /// </summary>
    public static double SquaredError(ReadOnlySpan<float> values, ClipRange range, int levels)
    {
        if (range.Width <= 0)
        {
            double e0 = 0;
            foreach (float v in values) e0 += (double)v * v;
            return e0;
        }

        double step = range.Width / (double)levels;
        double error = 0;
        foreach (float v in values)
        {
            double c = Math.Clamp(v, range.Min, range.Max);
            double dq = range.Min + (Math.Round((c - range.Min) / step) * step);
            error += (v - dq) * (v - dq);
        }

        return error;
    }
}
