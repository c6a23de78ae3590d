using Recsys.DenseCompute.Gemm;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Tests;

public class QuantizedRangeTests
{
    [Theory]
    [InlineData(255, false)]
    [InlineData(255, true)]
    [InlineData(254, false)]
    public void L2_range_beats_min_max_on_a_heavy_tailed_distribution(int levels, bool nonNegative)
    {
        float[] values = QuantizedGemmTests.HeavyTailed(20000, 11);
        if (nonNegative) values = values.Select(MathF.Abs).ToArray();
        ClipRange minMax = QuantizationRanges.MinMax(values, nonNegative);
        ClipRange l2 = QuantizationRanges.L2Optimal(values, levels, nonNegative);
        double minMaxError = QuantizationRanges.SquaredError(values, minMax, levels);
        double l2Error = QuantizationRanges.SquaredError(values, l2, levels);
        Assert.True(l2.Width < minMax.Width, $"the L2 range {l2} should clip the tail of {minMax}");
        Assert.True(l2Error < minMaxError, $"L2 range error {l2Error:E3} is not below min/max error {minMaxError:E3}");
    }

    [Fact]
    public void L2_range_keeps_the_full_range_of_a_uniform_distribution()
    {
        // Nothing to gain from clipping when there is no tail: the search must not invent one.
        float[] values = GemmReference.Random(20000, 4);
        ClipRange l2 = QuantizationRanges.L2Optimal(values, 255, nonNegative: false);
        ClipRange minMax = QuantizationRanges.MinMax(values, nonNegative: false);
        Assert.InRange(l2.Width / minMax.Width, 0.97, 1.0);
        Assert.True(QuantizationRanges.SquaredError(values, l2, 255) <= QuantizationRanges.SquaredError(values, minMax, 255) * 1.05);
    }

    [Fact]
    public void Net_aware_range_spends_no_levels_on_negatives()
    {
        float[] relu = GemmReference.Random(1000, 5).Select(v => MathF.Max(v, 0)).ToArray();
        relu[3] = -0.5f; // would stretch a plain min/max range
        Assert.Equal(0f, QuantizationRanges.MinMax(relu, nonNegative: true).Min);
        Assert.Equal(-0.5f, QuantizationRanges.MinMax(relu, nonNegative: false).Min);
        ActivationCode code = ActivationCode.For(QuantizationRanges.MinMax(relu, nonNegative: true));
        Assert.Equal(0, code.ZeroPoint);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.001)]
    [InlineData(0.01)]
    [InlineData(0.2)]
    public void Outlier_threshold_leaves_at_most_the_requested_share_above_it(double density)
    {
        float[] values = QuantizedGemmTests.HeavyTailed(5000, 6);
        float t = QuantizationRanges.OutlierThreshold(values, density);
        int above = values.Count(v => MathF.Abs(v) > t);
        Assert.True(above <= density * values.Length, $"{above} values above {t}, density {density}");
        Assert.True(above >= (density * values.Length) - 2, $"threshold {t} is looser than needed: only {above} above it");
    }

    [Fact]
    public void Error_report_measures_each_precision_against_fp32_and_picks_the_cheapest_good_one()
    {
        const int m = 64, k = 256, n = 128;
        float[] x = GemmReference.Random(m * k, 1).Select(v => MathF.Max(v, 0)).ToArray();
        float[] w = GemmReference.Random(n * k, 2, 1f / 16);
        float[] b = GemmReference.Random(n, 3, 0.1f);
        LayerError[] errors = LayerErrorReport.Measure("top.1", w, b, n, k, Activation.None, inputNonNegative: true, x, m);
        LayerError fp16 = errors.Single(e => e.Precision == LayerPrecision.Fp16);
        LayerError int8 = errors.Single(e => e.Precision == LayerPrecision.Int8);

        // Recompute the int8 figure from the layers' outputs.
        var reference = new float[m * n];
        var quantized = new float[m * n];
        PackedLinear.Pack(w, b, n, k, Activation.None).Forward(x, m, reference);
        DenseLayers.Create(LayerPrecision.Int8, w, b, n, k, Activation.None, inputNonNegative: true).Forward(x, m, quantized);
        double d2 = 0, r2 = 0, maxAbs = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            d2 += Math.Pow(quantized[i] - reference[i], 2);
            r2 += Math.Pow(reference[i], 2);
            maxAbs = Math.Max(maxAbs, Math.Abs(quantized[i] - reference[i]));
        }

        Assert.Equal(Math.Sqrt(d2 / r2), int8.RelativeL2, 12);
        Assert.Equal(maxAbs, int8.MaxAbs, 12);
        Assert.True(fp16.RelativeL2 < int8.RelativeL2, $"fp16 {fp16.RelativeL2:E2} should be more accurate than int8 {int8.RelativeL2:E2}");
        Assert.InRange(fp16.RelativeL2, 1e-6, 1e-3);
        Assert.InRange(int8.RelativeL2, 1e-4, 0.05);
        Assert.Equal(LayerPrecision.Int8, LayerErrorReport.Choose(errors, 0.05));
        Assert.Equal(LayerPrecision.Fp16, LayerErrorReport.Choose(errors, (fp16.RelativeL2 + int8.RelativeL2) / 2));
        Assert.Equal(LayerPrecision.Fp32, LayerErrorReport.Choose(errors, fp16.RelativeL2 / 2));
    }
}
