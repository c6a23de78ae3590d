namespace Recsys.DenseCompute.Quantized;

/// <summary>Which int8 kernel (and weight packing) a layer uses.</summary>
public enum Int8Kernel
{
    /// <summary>The fastest kernel this CPU runs (measured: see bench/RESULTS-precision.md).</summary>
    Auto,

    /// <summary>AvxVnni <c>vpdpbusd</c>, 256-bit, 32-bit accumulation; full s8 weights [-127, 127].</summary>
    Vnni,

    /// <summary>
    /// Avx512BW <c>vpmaddubsw</c> with 16-bit accumulation; 7-bit main weights [-63, 63] plus a sparse
    /// outlier part accumulated at 32 bits.
    /// </summary>
    Madd16,
}

/// <summary>How the per-output-channel weight range is chosen.</summary>
public enum WeightRangeMethod
{
    /// <summary>max |w| of the channel: nothing is clipped.</summary>
    MinMax,

    /// <summary>The clip with the least expected squared error (<see cref="QuantizationRanges.L2Optimal"/>).</summary>
    L2,
}

/// <summary>Packing choices of an int8 Linear layer.</summary>
public sealed record Int8Options
{
    public Int8Kernel Kernel { get; init; } = Int8Kernel.Auto;

    /// <summary>The input comes out of a ReLU: quantize it on [0, max] with zero point 0 (net-aware range).</summary>
    public bool InputNonNegative { get; init; }

    /// <summary>
    /// Per-channel weight range. For <see cref="Int8Kernel.Vnni"/> weights beyond the range are clipped;
    /// for <see cref="Int8Kernel.Madd16"/> they become exact outliers.
    /// </summary>
    public WeightRangeMethod WeightRange { get; init; } = WeightRangeMethod.MinMax;

    /// <summary>
    /// <see cref="Int8Kernel.Madd16"/> only, when &gt; 0: the main range of each channel is the
    /// <see cref="QuantizationRanges.OutlierThreshold"/> for this density, the weights above it are outliers.
    /// Overrides <see cref="WeightRange"/>.
    /// </summary>
    public double OutlierDensity { get; init; }

    /// <summary>
    /// <see cref="Int8Kernel.Madd16"/> only: groups of 4 k accumulated in 16 bits before widening (1 or 2);
    /// 0 picks 2 when keeping it exact moves at most <see cref="MaxChunkOutlierShare"/> of the weights to the outliers.
    /// </summary>
    public int Madd16Chunk { get; init; }

    /// <summary>Largest share of weights the two-group chunk may push to the sparse part when chosen automatically.</summary>
    public double MaxChunkOutlierShare { get; init; } = 0.002;
}
