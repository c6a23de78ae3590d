using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Quantized;

/// <summary>The error a reduced-precision layer adds on calibration inputs, against its fp32 output.</summary>
/// <param name="RelativeL2">‖y - y_fp32‖₂ / ‖y_fp32‖₂ over the whole calibration batch.</param>
/// <param name="MaxAbs">max |y - y_fp32|.</param>
public sealed record LayerError(string Layer, LayerPrecision Precision, double RelativeL2, double MaxAbs);

/// <summary>The error one candidate setting adds to a layer, or why the layer cannot be packed that way.</summary>
/// <param name="Failure">Null when the layer packed; else the packer's reason (e.g. a weight beyond the fp16 range).</param>
public sealed record CandidateError(LayerCandidate Candidate, double RelativeL2, double MaxAbs, string? Failure)
{
    public bool Packed => Failure is null;
}

/// <summary>
/// Selective quantization: measure each layer at fp16 and int8 on calibration inputs so a caller keeps
/// the layers that hurt fp32. Layers are measured one at a time on the same fp32 inputs, so an error is
/// the layer's own, not accumulated from the layers before it.
/// </summary>
public static class LayerErrorReport
{
    /// <summary>fp16 and int8 errors of one Linear layer on <paramref name="calibration"/> (m rows of In values).</summary>
    public static LayerError[] Measure(string layer, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outFeatures, int inFeatures, Activation activation, bool inputNonNegative, ReadOnlySpan<float> calibration, int m)
    {
        var reference = new float[(long)m * outFeatures];
        PackedLinear.Pack(weight, bias, outFeatures, inFeatures, activation).Forward(calibration, m, reference);
        var result = new LayerError[2];
        int i = 0;
        foreach (LayerPrecision p in (ReadOnlySpan<LayerPrecision>)[LayerPrecision.Fp16, LayerPrecision.Int8])
        {
            IDenseLayer l = DenseLayers.Create(p, weight, bias, outFeatures, inFeatures, activation, inputNonNegative);
            var y = new float[reference.Length];
            l.Forward(calibration, m, y);
            result[i++] = Compare(layer, p, y, reference);
        }

        return result;
    }

    /// <summary>
    /// The settings the search weighs per layer: fp16, and int8 with each of the paper's weight-range
    /// choices (min/max, L2-optimal clip, outlier split at 0.1% and 1%). Net-aware activation ranges
    /// are not a choice: a layer that reads a ReLU output always uses them.
    /// </summary>
    public static readonly LayerCandidate[] Candidates =
    [
        LayerCandidate.Fp16,
        LayerCandidate.Int8With(WeightRangeMethod.MinMax),
        LayerCandidate.Int8With(WeightRangeMethod.L2),
        LayerCandidate.Int8With(WeightRangeMethod.MinMax, outlierDensity: 0.001),
        LayerCandidate.Int8With(WeightRangeMethod.MinMax, outlierDensity: 0.01),
    ];

    /// <summary>Each candidate's error on <paramref name="calibration"/> (m rows of In values) against the fp32 layer.</summary>
    public static CandidateError[] Measure(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outFeatures, int inFeatures, Activation activation, bool inputNonNegative, ReadOnlySpan<float> calibration, int m, IReadOnlyList<LayerCandidate> candidates)
    {
        var reference = new float[(long)m * outFeatures];
        PackedLinear.Pack(weight, bias, outFeatures, inFeatures, activation).Forward(calibration, m, reference);
        var y = new float[reference.Length];
        var result = new CandidateError[candidates.Count];
        for (int i = 0; i < candidates.Count; i++)
        {
            LayerCandidate c = candidates[i];
            IDenseLayer layer;
            try
            {
                layer = DenseLayers.Create(c.Precision, weight, bias, outFeatures, inFeatures, activation, inputNonNegative, c.Int8.ToOptions(inputNonNegative));
            }
            catch (ArgumentException e)
            {
                // The packers refuse weights they cannot represent (|w| beyond half, int32 sums that could overflow).
                result[i] = new CandidateError(c, double.NaN, double.NaN, e.Message.Split(" (Parameter", StringSplitOptions.None)[0]);
                continue;
            }

            layer.Forward(calibration, m, y);
            LayerError e2 = Compare("", c.Precision, y, reference);
            result[i] = new CandidateError(c, e2.RelativeL2, e2.MaxAbs, null);
        }

        return result;
    }

    public static LayerError Compare(string layer, LayerPrecision precision, ReadOnlySpan<float> actual, ReadOnlySpan<float> reference)
    {
        if (actual.Length != reference.Length) throw new ArgumentException($"{actual.Length} outputs vs {reference.Length} reference outputs", nameof(actual));
        double diff2 = 0, ref2 = 0, maxAbs = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = (double)actual[i] - reference[i];
            diff2 += d * d;
            ref2 += (double)reference[i] * reference[i];
            maxAbs = Math.Max(maxAbs, Math.Abs(d));
        }

        double rel = ref2 > 0 ? Math.Sqrt(diff2 / ref2) : Math.Sqrt(diff2);
        return new LayerError(layer, precision, rel, maxAbs);
    }

    /// <summary>The cheapest precision whose relative L2 error is at most <paramref name="maxRelativeL2"/>; fp32 when none is.</summary>
    public static LayerPrecision Choose(IEnumerable<LayerError> errors, double maxRelativeL2)
    {
        LayerPrecision best = LayerPrecision.Fp32;
        foreach (LayerError e in errors)
        {
            if (e.RelativeL2 <= maxRelativeL2 && e.Precision > best) best = e.Precision;
        }

        return best;
    }
}
