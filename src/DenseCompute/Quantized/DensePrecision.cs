namespace Recsys.DenseCompute.Quantized;

/// <summary>
/// The precision of every Linear layer of a DLRM: one default for the dense part and
/// per-layer overrides keyed "bottom.N" / "top.N" (N counts Linear layers from 0).
/// </summary>
public sealed class DensePrecision
{
    public static readonly DensePrecision Fp32 = new(LayerPrecision.Fp32, new Dictionary<string, LayerPrecision>());

    public DensePrecision(LayerPrecision dense, IReadOnlyDictionary<string, LayerPrecision> layers)
    {
        Dense = dense;
        Layers = layers;
    }

    public LayerPrecision Dense { get; }

    public IReadOnlyDictionary<string, LayerPrecision> Layers { get; }

    public static string BottomLayer(int index) => $"bottom.{index}";

    public static string TopLayer(int index) => $"top.{index}";

    public LayerPrecision For(string layer) => Layers.TryGetValue(layer, out LayerPrecision p) ? p : Dense;
}
