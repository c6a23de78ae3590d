using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Quantized;

/// <summary>
/// A Linear layer y = act(x · Wᵀ + b) at some precision. An MLP holds a mix of them, so the
/// call is dispatched once per layer, never per element.
/// </summary>
public interface IDenseLayer
{
    int InFeatures { get; }
    int OutFeatures { get; }
    Activation Activation { get; }
    LayerPrecision Precision { get; }

    /// <summary>output[m x Out] = act(input[m x In] · Wᵀ + b).</summary>
    /// <param name="maxThreads">Upper bound on threads; small problems run on the caller alone (every precision follows the fp32 GEMM's policy).</param>
    void Forward(ReadOnlySpan<float> input, int m, Span<float> output, int maxThreads = 1);
}

/// <summary>The fp32 <see cref="PackedLinear"/> as a <see cref="IDenseLayer"/>.</summary>
public sealed class Fp32Layer(PackedLinear packed) : IDenseLayer
{
    public PackedLinear Packed { get; } = packed;
    public int InFeatures => Packed.InFeatures;
    public int OutFeatures => Packed.OutFeatures;
    public Activation Activation => Packed.Activation;
    public LayerPrecision Precision => LayerPrecision.Fp32;

    public void Forward(ReadOnlySpan<float> input, int m, Span<float> output, int maxThreads = 1) =>
        Packed.Forward(input, m, output, maxThreads);
}

public static class DenseLayers
{
    /// <summary>Packs one Linear layer at <paramref name="precision"/>.</summary>
    /// <param name="inputNonNegative">
    /// The input comes out of a ReLU: int8 layers then quantize it on [0, max] (net-aware range),
    /// which spends all 256 levels on the values that occur and drops the zero-point correction.
    /// </param>
    /// <param name="int8">Packing options of an int8 layer (its InputNonNegative is replaced by <paramref name="inputNonNegative"/>); null: min/max ranges.</param>
    public static IDenseLayer Create(LayerPrecision precision, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outFeatures, int inFeatures, Activation activation, bool inputNonNegative, Int8Options? int8 = null) =>
        precision switch
        {
            LayerPrecision.Fp16 => PackedLinearF16.Pack(weight, bias, outFeatures, inFeatures, activation),
            LayerPrecision.Int8 => PackedLinearInt8.Pack(weight, bias, outFeatures, inFeatures, activation, (int8 ?? new Int8Options()) with { InputNonNegative = inputNonNegative }),
            LayerPrecision.Fp32 => new Fp32Layer(PackedLinear.Pack(weight, bias, outFeatures, inFeatures, activation)),
            _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown precision"),
        };
}
