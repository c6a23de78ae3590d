using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Accuracy;

/// <summary>
/// A named precision setting applied to a model's spec before loading: the weights on disk stay
/// fp32 and are re-encoded at load, so every variant starts from the same numbers.
/// </summary>
public sealed record PrecisionVariant(string Name, string Description, Func<DlrmSpec, DlrmSpec> Apply)
{
    public static readonly PrecisionVariant[] All =
    [
        new("fp32", "as stored in model.json", s => s),
        Rows(RowFormat.Fp16, "rows-fp16", "every table fp16"),
        Rows(RowFormat.Int8, "rows-int8", "every table FBGEMM row-wise int8"),
        Rows(RowFormat.Int4, "rows-int4", "every table FBGEMM row-wise int4"),
        Dense(LayerPrecision.Fp16, "dense-fp16", "every Linear layer with fp16 weights"),
        Dense(LayerPrecision.Int8, "dense-int8", "every Linear layer int8 (u8 activations x s8 weights)"),
        new("dense-int8-keep-last", "every Linear layer int8 but the last (the score layer stays fp32)", s => s with
        {
            Precision = new DensePrecision(LayerPrecision.Int8, new Dictionary<string, LayerPrecision> { [DensePrecision.TopLayer(s.TopMlp.Length - 1)] = LayerPrecision.Fp32 }),
        }),
        new("int8-all", "int8 Linear layers and int8 rows", s => Rows(RowFormat.Int8, "", "").Apply(Dense(LayerPrecision.Int8, "", "").Apply(s))),
    ];

    public static PrecisionVariant Find(string name) =>
        All.FirstOrDefault(v => v.Name == name)
        ?? throw new ArgumentException($"unknown precision variant '{name}' (one of {string.Join(", ", All.Select(v => v.Name))})", nameof(name));

    private static PrecisionVariant Dense(LayerPrecision precision, string name, string description) =>
        new(name, description, s => s with { Precision = new DensePrecision(precision, new Dictionary<string, LayerPrecision>()) });

    private static PrecisionVariant Rows(RowFormat format, string name, string description) =>
        new(name, description, s => s with { Tables = [.. s.Tables.Select(t => t with { Storage = format })] });
}
