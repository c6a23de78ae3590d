namespace Recsys.DenseCompute.Quantized;

/// <summary>
/// The precision of every Linear layer of a DLRM: one default for the dense part and
/// per-layer overrides keyed "bottom.N" / "top.N" (N counts Linear layers from 0), plus the
/// int8 weight-range technique per layer (model.json "precision.int8").
/// </summary>
public sealed class DensePrecision
{
    private static readonly Dictionary<string, Int8WeightSettings> NoInt8Settings = [];

    // Declared after NoInt8Settings: static fields initialise in order, and this one reads it.
    public static readonly DensePrecision Fp32 = new(LayerPrecision.Fp32, new Dictionary<string, LayerPrecision>());

    public DensePrecision(LayerPrecision dense, IReadOnlyDictionary<string, LayerPrecision> layers, IReadOnlyDictionary<string, Int8WeightSettings>? int8 = null)
    {
        Dense = dense;
        Layers = layers;
        Int8 = int8 ?? NoInt8Settings;
    }

    public LayerPrecision Dense { get; }

    public IReadOnlyDictionary<string, LayerPrecision> Layers { get; }

    /// <summary>Weight-range technique of the int8 layers that do not use the default (min/max, no outliers).</summary>
    public IReadOnlyDictionary<string, Int8WeightSettings> Int8 { get; }

    public static string BottomLayer(int index) => $"bottom.{index}";

    public static string TopLayer(int index) => $"top.{index}";

    public LayerPrecision For(string layer) => Layers.TryGetValue(layer, out LayerPrecision p) ? p : Dense;

    /// <summary>The int8 packing options of <paramref name="layer"/>; the input's net-aware flag comes from the layer's place in the MLP.</summary>
    public Int8Options Int8OptionsFor(string layer, bool inputNonNegative) =>
        (Int8.TryGetValue(layer, out Int8WeightSettings s) ? s : Int8WeightSettings.Default).ToOptions(inputNonNegative);
}

/// <summary>
/// How an int8 layer chooses its per-channel weight ranges (Park et al. 2018): min/max, the
/// L2-error-minimizing clip, or an outlier split that keeps the largest weights exact in a sparse
/// 32-bit part.
/// </summary>
/// <param name="OutlierDensity">Share of weights moved to the sparse part (0: none); overrides <paramref name="WeightRange"/>.</param>
public readonly record struct Int8WeightSettings(WeightRangeMethod WeightRange, double OutlierDensity)
{
    public static Int8WeightSettings Default => new(WeightRangeMethod.MinMax, 0);

    public bool IsDefault => WeightRange == WeightRangeMethod.MinMax && OutlierDensity == 0;

    public Int8Options ToOptions(bool inputNonNegative) => new()
    {
        InputNonNegative = inputNonNegative,
        WeightRange = WeightRange,
        OutlierDensity = OutlierDensity,
    };

    /// <summary>A short name for reports: "min/max", "L2 ranges", "outliers 1%".</summary>
    public string Describe() =>
        OutlierDensity > 0 ? $"outlier split {OutlierDensity * 100:0.###}%"
        : WeightRange == WeightRangeMethod.L2 ? "L2-optimal ranges"
        : "min/max ranges";
}
