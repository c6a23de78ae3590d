namespace Recsys.DenseCompute.Characterization;

/// <summary>
/// The operator classes Park et al. (2018) break inference time into. DLRM uses the first
/// three; the convolution, recurrent and attention kinds are for ONNX-profiled vision and
/// translation models, whose node types map onto them.
/// </summary>
public enum OperatorKind
{
    Gemm,
    EmbeddingLookup,
    Interaction,
    Conv,
    GroupedConv,
    Recurrent,
    Attention,
    Other,
}

/// <summary>Which peak binds an operator's arithmetic.</summary>
public enum ComputeUnit
{
    Fp32,
    Int8,
}

/// <summary>
/// The static cost of one operator at one batch size: work and the bytes it must move.
/// Weight bytes are the parameters the operator reads (for an embedding bag: the rows it
/// gathers, at the table's stored format); activation bytes are what flows in and out.
/// </summary>
/// <param name="Shape">A short shape description; operators with the same kind and shape are reported together.</param>
/// <param name="GatherRowBytes">Bytes per row when the weights are read as random rows (embedding lookups); 0 for streamed weights.</param>
public sealed record OperatorCost(
    string Name,
    OperatorKind Kind,
    string Shape,
    string Precision,
    long Flops,
    long WeightBytes,
    long ActivationBytesIn,
    long ActivationBytesOut,
    ComputeUnit Compute = ComputeUnit.Fp32,
    int GatherRowBytes = 0)
{
    public long ActivationBytes => ActivationBytesIn + ActivationBytesOut;

    public long TotalBytes => WeightBytes + ActivationBytes;

    public bool IsGather => GatherRowBytes > 0;

    /// <summary>Flops per weight byte; null for operators without weights (interaction), whose intensity is unbounded.</summary>
    public double? FlopsPerWeightByte => WeightBytes > 0 ? (double)Flops / WeightBytes : null;

    /// <summary>Flops per byte moved (weights plus activations in and out): the roofline's x axis.</summary>
    public double FlopsPerByte => TotalBytes > 0 ? (double)Flops / TotalBytes : 0;
}
