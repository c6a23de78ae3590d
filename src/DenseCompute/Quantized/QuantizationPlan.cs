using System.Globalization;
using System.Text.Json.Nodes;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Quantized;

/// <summary>One Linear layer's setting: its precision and, for int8, how its weight ranges are chosen.</summary>
public readonly record struct LayerCandidate(LayerPrecision Precision, Int8WeightSettings Int8)
{
    public static LayerCandidate Fp32 => new(LayerPrecision.Fp32, Int8WeightSettings.Default);

    public static LayerCandidate Fp16 => new(LayerPrecision.Fp16, Int8WeightSettings.Default);

    public static LayerCandidate Int8With(WeightRangeMethod range, double outlierDensity = 0) => new(LayerPrecision.Int8, new Int8WeightSettings(range, outlierDensity));

    public string Name => Precision == LayerPrecision.Int8 ? $"int8 ({Int8.Describe()})" : LayerPrecisions.Name(Precision);
}

/// <summary>
/// The precision of every Linear layer (keyed "bottom.N" / "top.N") and the row format of every
/// table: what `recsys quantize` chooses, applied to a spec or written into a model.json.
/// </summary>
public sealed class QuantizationPlan
{
    private readonly Dictionary<string, LayerCandidate> _layers;
    private readonly RowFormat[] _tables;

    private QuantizationPlan(Dictionary<string, LayerCandidate> layers, RowFormat[] tables)
    {
        _layers = layers;
        _tables = tables;
    }

    /// <summary>Every layer name of the spec, bottom MLP first, in forward order.</summary>
    public static IReadOnlyList<string> LayerNames(DlrmSpec spec) =>
        [.. Enumerable.Range(0, spec.BottomMlp.Length).Select(DensePrecision.BottomLayer), .. Enumerable.Range(0, spec.TopMlp.Length).Select(DensePrecision.TopLayer)];

    /// <summary>Every layer fp32, every table as the spec stores it: where the search starts.</summary>
    public static QuantizationPlan Fp32Dense(DlrmSpec spec) =>
        new(LayerNames(spec).ToDictionary(l => l, _ => LayerCandidate.Fp32, StringComparer.Ordinal), [.. spec.Tables.Select(t => t.Storage)]);

    public IReadOnlyDictionary<string, LayerCandidate> Layers => _layers;

    public IReadOnlyList<RowFormat> Tables => _tables;

    public QuantizationPlan WithLayer(string layer, LayerCandidate candidate)
    {
        if (!_layers.ContainsKey(layer)) throw new ArgumentException($"no layer '{layer}' in the plan", nameof(layer));
        return new QuantizationPlan(new Dictionary<string, LayerCandidate>(_layers, StringComparer.Ordinal) { [layer] = candidate }, _tables);
    }

    public QuantizationPlan WithTable(int table, RowFormat format)
    {
        RowFormat[] tables = (RowFormat[])_tables.Clone();
        tables[table] = format;
        return new QuantizationPlan(_layers, tables);
    }

    /// <summary>The spec with this plan's precision and row formats; everything else unchanged.</summary>
    public DlrmSpec Apply(DlrmSpec spec)
    {
        if (spec.Tables.Length != _tables.Length) throw new ArgumentException($"the plan has {_tables.Length} tables, the spec {spec.Tables.Length}", nameof(spec));
        LayerPrecision dense = DefaultPrecision();
        var layers = _layers.Where(l => l.Value.Precision != dense).ToDictionary(l => l.Key, l => l.Value.Precision, StringComparer.Ordinal);
        var int8 = _layers.Where(l => l.Value.Precision == LayerPrecision.Int8 && !l.Value.Int8.IsDefault).ToDictionary(l => l.Key, l => l.Value.Int8, StringComparer.Ordinal);
        return spec with
        {
            Precision = new DensePrecision(dense, layers, int8),
            Tables = [.. spec.Tables.Select((t, i) => t with { Storage = _tables[i] })],
        };
    }

    /// <summary>
    /// Writes the plan into a parsed model.json: "precision" is replaced, each table's "storage" set;
    /// every other field (and any the parser does not know) is kept as it was.
    /// </summary>
    public void WriteInto(JsonObject modelJson)
    {
        if (modelJson["tables"] is not JsonArray tables || tables.Count != _tables.Length) throw new ArgumentException($"model.json needs a tables array of {_tables.Length} entries", nameof(modelJson));
        for (int t = 0; t < _tables.Length; t++)
        {
            if (tables[t] is not JsonObject table) throw new ArgumentException($"tables[{t}] is not an object", nameof(modelJson));
            table["storage"] = RowLayout.Name(_tables[t]);
        }

        LayerPrecision dense = DefaultPrecision();
        var layers = new JsonObject();
        var int8 = new JsonObject();
        foreach (string name in _layers.Keys.OrderBy(LayerOrder))
        {
            LayerCandidate c = _layers[name];
            if (c.Precision != dense) layers[name] = LayerPrecisions.Name(c.Precision);
            if (c.Precision == LayerPrecision.Int8 && !c.Int8.IsDefault)
            {
                int8[name] = new JsonObject
                {
                    ["weight_range"] = c.Int8.WeightRange == WeightRangeMethod.L2 ? "l2" : "minmax",
                    ["outlier_density"] = c.Int8.OutlierDensity,
                };
            }
        }

        var precision = new JsonObject { ["dense"] = LayerPrecisions.Name(dense), ["layers"] = layers };
        if (int8.Count > 0) precision["int8"] = int8;
        modelJson["precision"] = precision;
    }

    /// <summary>The most common layer precision (fp32 on ties), so model.json lists only the exceptions.</summary>
    private LayerPrecision DefaultPrecision() =>
        _layers.Values.GroupBy(c => c.Precision).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;

    /// <summary>bottom.0, bottom.1, ..., top.0, ...: the forward order, numerically (top.10 after top.9).</summary>
    private static (int, int) LayerOrder(string name)
    {
        int dot = name.IndexOf('.', StringComparison.Ordinal);
        return (name.StartsWith("bottom", StringComparison.Ordinal) ? 0 : 1, int.Parse(name.AsSpan(dot + 1), CultureInfo.InvariantCulture));
    }
}
