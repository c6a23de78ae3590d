using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Characterization;

/// <summary>
/// Flops and bytes of the operators our kernels run. Conventions (the tests derive numbers from
/// them by hand): a multiply-add is 2 flops; activations are fp32; ids are 8-byte longs and bag
/// offsets 4-byte ints; ReLU and sigmoid are not counted.
/// </summary>
public static class OperatorAccounting
{
    private const int FloatBytes = sizeof(float);

    /// <summary>Bytes one weight takes at a precision; per-output extras are in <see cref="LinearBytesPerOutput"/>.</summary>
    public static int BytesPerWeight(LayerPrecision precision) => precision switch
    {
        LayerPrecision.Fp32 => 4,
        LayerPrecision.Fp16 => 2,
        LayerPrecision.Int8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown Linear precision"),
    };

    /// <summary>
    /// Per output channel: the fp32 bias; int8 layers also keep an fp32 weight scale and the int32
    /// weight-row sum of the zero-point correction (<see cref="PackedLinearInt8"/>).
    /// </summary>
    public static int LinearBytesPerOutput(LayerPrecision precision) => precision == LayerPrecision.Int8 ? 12 : 4;

    public static string Name(LayerPrecision precision) => LayerPrecisions.Name(precision);

    /// <summary>Weight and bias bytes of a Linear layer at its stored precision.</summary>
    public static long LinearWeightBytes(int inFeatures, int outFeatures, LayerPrecision precision) =>
        (long)inFeatures * outFeatures * BytesPerWeight(precision) + (long)outFeatures * LinearBytesPerOutput(precision);

    /// <summary>y[B x out] = x[B x in] · Wᵀ + b: 2·B·in·out for the products and B·out for the bias.</summary>
    public static OperatorCost Linear(string name, int batch, int inFeatures, int outFeatures, LayerPrecision precision = LayerPrecision.Fp32)
    {
        CheckPositive(batch, nameof(batch));
        CheckPositive(outFeatures, nameof(outFeatures));
        if (inFeatures < 0) throw new ArgumentOutOfRangeException(nameof(inFeatures), inFeatures, "in features cannot be negative");
        long b = batch;
        return new OperatorCost(
            name, OperatorKind.Gemm, $"{inFeatures}->{outFeatures}", Name(precision),
            Flops: 2 * b * inFeatures * outFeatures + b * outFeatures,
            WeightBytes: LinearWeightBytes(inFeatures, outFeatures, precision),
            ActivationBytesIn: b * inFeatures * FloatBytes,
            ActivationBytesOut: b * outFeatures * FloatBytes,
            Compute: precision == LayerPrecision.Int8 ? ComputeUnit.Int8 : ComputeUnit.Fp32);
    }

    /// <summary>
    /// A bag of <paramref name="lookups"/> rows per sample: the rows are gathered at the table's
    /// row format. Each gathered value costs one add, or one multiply-add (2 flops) when a
    /// per-index weight or a dequantization scale is folded in; mean pooling adds B·dim multiplies.
    /// </summary>
    public static OperatorCost EmbeddingBag(string name, int batch, TableSpec table, int lookups, bool weighted = false)
    {
        CheckPositive(batch, nameof(batch));
        if (lookups < 0) throw new ArgumentOutOfRangeException(nameof(lookups), lookups, "lookups per bag cannot be negative");
        long rows = (long)batch * lookups;
        int rowBytes = table.RowBytes;
        bool fused = weighted || table.Storage is RowFormat.Int8 or RowFormat.Int4;
        long flops = rows * table.Dim * (fused ? 2 : 1) + (table.Pooling == Pooling.Mean ? (long)batch * table.Dim : 0);
        return new OperatorCost(
            name, OperatorKind.EmbeddingLookup, $"{table.Rows}x{table.Dim} L={lookups}", RowLayout.Name(table.Storage),
            Flops: flops,
            WeightBytes: rows * rowBytes,
            ActivationBytesIn: rows * sizeof(long) + (batch + 1L) * sizeof(int) + (weighted ? rows * FloatBytes : 0),
            ActivationBytesOut: (long)batch * table.Dim * FloatBytes,
            GatherRowBytes: rowBytes);
    }

    /// <summary>
    /// The DLRM interaction over n = tables + 1 vectors. Dot: one dim-long dot product (2·dim flops)
    /// per pair of the lower triangle; cat: a copy, no flops. Both read the n vectors and write the
    /// output row (the bottom vector followed by the pairs or the embeddings).
    /// </summary>
    public static OperatorCost Interaction(string name, int batch, DlrmSpec spec)
    {
        CheckPositive(batch, nameof(batch));
        int n = spec.Tables.Length + 1;
        long inputFloats = spec.BottomOutput + spec.Tables.Sum(t => (long)t.Dim);
        long pairs = spec.Interaction == InteractionKind.Dot ? spec.InteractionOutput - spec.BottomOutput : 0;
        string shape = spec.Interaction == InteractionKind.Dot ? $"dot {n}x{spec.BottomOutput} -> {pairs} pairs" : $"cat {n} vectors -> {spec.InteractionOutput}";
        return new OperatorCost(
            name, OperatorKind.Interaction, shape, "fp32",
            Flops: batch * pairs * 2 * spec.BottomOutput,
            WeightBytes: 0,
            ActivationBytesIn: batch * inputFloats * FloatBytes,
            ActivationBytesOut: (long)batch * spec.InteractionOutput * FloatBytes);
    }

    /// <summary>A copy of B x width floats (the bottom input passed through when there is no bottom MLP).</summary>
    public static OperatorCost Copy(string name, int batch, int width) =>
        new(name, OperatorKind.Other, $"copy {width}", "fp32", 0, 0, (long)batch * width * FloatBytes, (long)batch * width * FloatBytes);

    private static void CheckPositive(int value, string name)
    {
        if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be > 0");
    }
}
