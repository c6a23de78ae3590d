using System.Text.Json;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Models;

/// <summary>
/// A parsed model.json. Every DLRM field is validated here so a bad file fails at load with
/// the file and field named, never later inside a kernel.
/// </summary>
public sealed class ModelSpec
{
    private ModelSpec(string file, string kind, JsonElement root, DlrmSpec? dlrm)
    {
        File = file;
        Kind = kind;
        Root = root;
        Dlrm = dlrm;
    }

    public string File { get; }
    public string Directory => System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(File))!;
    public string Kind { get; }

    /// <summary>The raw document, for kinds whose fields other components parse (vision, seq2seq).</summary>
    public JsonElement Root { get; }

    public DlrmSpec? Dlrm { get; }

    public DlrmSpec RequireDlrm() => Dlrm ?? throw new ModelFileException(File, "kind", $"is '{Kind}', a DLRM was expected");

    public static ModelSpec Load(string path)
    {
        if (!System.IO.File.Exists(path)) throw new ModelFileException(path, "file", "does not exist");
        return Parse(System.IO.File.ReadAllText(path), path);
    }

    public static ModelSpec Parse(string json, string file)
    {
        JsonElement root;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ModelFileException(file, "json", $"not valid JSON ({e.Message})");
        }
        if (root.ValueKind != JsonValueKind.Object) throw new ModelFileException(file, "json", "must be an object");
        string kind = root.TryGetProperty("kind", out JsonElement k) && k.ValueKind == JsonValueKind.String
            ? k.GetString()!
            : throw new ModelFileException(file, "kind", "missing (dlrm, classification, detection, video, seq2seq)");
        DlrmSpec? dlrm = kind == "dlrm" ? ParseDlrm(root, file) : null;
        return new ModelSpec(file, kind, root, dlrm);
    }

    private static DlrmSpec ParseDlrm(JsonElement root, string file)
    {
        var r = new FieldReader(root, file, "");
        int dense = r.Int("dense_features", min: 0);
        int[] bottom = r.IntArray("bottom_mlp", min: 1, allowEmpty: true);
        int[] top = r.IntArray("top_mlp", min: 1, allowEmpty: false);
        string interaction = r.String("interaction", "dot");
        InteractionKind kind = interaction switch
        {
            "dot" => InteractionKind.Dot,
            "cat" => InteractionKind.Cat,
            _ => throw new ModelFileException(file, "interaction", $"'{interaction}' is not one of dot, cat"),
        };
        bool itself = r.Bool("interaction_itself", false);
        string weights = r.String("weights", "weights.safetensors");
        if (!root.TryGetProperty("tables", out JsonElement tables) || tables.ValueKind != JsonValueKind.Array)
        {
            throw new ModelFileException(file, "tables", "missing or not an array");
        }
        var specs = new List<TableSpec>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        int i = 0;
        foreach (JsonElement t in tables.EnumerateArray())
        {
            var tr = new FieldReader(t, file, $"tables[{i}].");
            string name = tr.String("name", null);
            if (!names.Add(name)) throw new ModelFileException(file, $"tables[{i}].name", $"'{name}' appears twice");
            long rows = tr.Long("rows", min: 1);
            int dim = tr.Int("dim", min: 1);
            string pooling = tr.String("pooling", "sum");
            Pooling pool = pooling switch
            {
                "sum" => Pooling.Sum,
                "mean" => Pooling.Mean,
                _ => throw new ModelFileException(file, $"tables[{i}].pooling", $"'{pooling}' is not one of sum, mean"),
            };
            string storage = tr.String("storage", "fp32");
            if (!RowLayout.TryParse(storage, out RowFormat format)) throw new ModelFileException(file, $"tables[{i}].storage", $"'{storage}' is not one of fp32, fp16, int8, int4");
            int shards = tr.Int("shards", min: 1, fallback: 1);
            if (shards > rows) throw new ModelFileException(file, $"tables[{i}].shards", $"{shards} shards for {rows} rows");
            int lookups = tr.Int("lookups", min: 0, fallback: 1);
            int replicas = tr.Int("replicas", min: 1, fallback: 1);
            specs.Add(new TableSpec(name, rows, dim, pool, format, shards, lookups) { Replicas = replicas });
            i++;
        }
        var spec = new DlrmSpec(dense, bottom, top, kind, itself, [.. specs], weights)
        {
            Precision = ParsePrecision(root, file, bottom.Length, top.Length),
        };
        if (kind == InteractionKind.Dot)
        {
            for (int t = 0; t < spec.Tables.Length; t++)
            {
                if (spec.Tables[t].Dim != spec.BottomOutput)
                {
                    throw new ModelFileException(file, $"tables[{t}].dim", $"is {spec.Tables[t].Dim}, the dot interaction needs every table dim equal to the bottom MLP output ({spec.BottomOutput})");
                }
            }
        }
        if (dense == 0 && bottom.Length > 0) throw new ModelFileException(file, "bottom_mlp", "given but dense_features is 0");
        return spec;
    }

    /// <summary>
    /// "precision": {"dense": "fp32|fp16|int8", "layers": {"bottom.0": "fp32", "top.2": "int8"},
    /// "int8": {"top.2": {"weight_range": "l2", "outlier_density": 0.001}}}; absent means fp32.
    /// Layer keys count Linear layers from 0 and must exist in the MLPs.
    /// </summary>
    private static DensePrecision ParsePrecision(JsonElement root, string file, int bottomLayers, int topLayers)
    {
        if (!root.TryGetProperty("precision", out JsonElement p) || p.ValueKind == JsonValueKind.Null) return DensePrecision.Fp32;
        if (p.ValueKind != JsonValueKind.Object) throw new ModelFileException(file, "precision", "must be an object like {\"dense\": \"int8\", \"layers\": {\"top.0\": \"fp32\"}}");
        var r = new FieldReader(p, file, "precision.");
        LayerPrecision dense = ParseLayerPrecision(r.String("dense", "fp32"), file, "precision.dense");
        var layers = new Dictionary<string, LayerPrecision>(StringComparer.Ordinal);
        if (p.TryGetProperty("layers", out JsonElement l) && l.ValueKind != JsonValueKind.Null)
        {
            if (l.ValueKind != JsonValueKind.Object) throw new ModelFileException(file, "precision.layers", "must be an object of \"bottom.N\" / \"top.N\": precision");
            foreach (JsonProperty e in l.EnumerateObject())
            {
                string field = $"precision.layers.{e.Name}";
                string layer = LayerKey(e.Name, file, field, bottomLayers, topLayers);
                if (e.Value.ValueKind != JsonValueKind.String) throw new ModelFileException(file, field, "must be a string (fp32, fp16, int8)");
                layers[layer] = ParseLayerPrecision(e.Value.GetString()!, file, field);
            }
        }

        var int8 = new Dictionary<string, Int8WeightSettings>(StringComparer.Ordinal);
        if (p.TryGetProperty("int8", out JsonElement q) && q.ValueKind != JsonValueKind.Null)
        {
            if (q.ValueKind != JsonValueKind.Object) throw new ModelFileException(file, "precision.int8", "must be an object of \"bottom.N\" / \"top.N\": {\"weight_range\": \"minmax|l2\", \"outlier_density\": 0.001}");
            foreach (JsonProperty e in q.EnumerateObject())
            {
                string field = $"precision.int8.{e.Name}";
                string layer = LayerKey(e.Name, file, field, bottomLayers, topLayers);
                if (e.Value.ValueKind != JsonValueKind.Object) throw new ModelFileException(file, field, "must be an object {\"weight_range\": \"minmax|l2\", \"outlier_density\": 0.001}");
                var lr = new FieldReader(e.Value, file, field + ".");
                string range = lr.String("weight_range", "minmax");
                WeightRangeMethod method = range switch
                {
                    "minmax" => WeightRangeMethod.MinMax,
                    "l2" => WeightRangeMethod.L2,
                    _ => throw new ModelFileException(file, field + ".weight_range", $"'{range}' is not one of minmax, l2"),
                };
                double density = lr.Double("outlier_density", 0);
                if (!(density >= 0 && density < 1)) throw new ModelFileException(file, field + ".outlier_density", $"is {density}, must be in [0, 1)");
                int8[layer] = new Int8WeightSettings(method, density);
            }
        }

        return new DensePrecision(dense, layers, int8);
    }

    /// <summary>"bottom.N" / "top.N" of an existing Linear layer, normalised (no leading zeros).</summary>
    private static string LayerKey(string key, string file, string field, int bottomLayers, int topLayers)
    {
        string[] parts = key.Split('.');
        int count = parts.Length == 2 ? parts[0] switch { "bottom" => bottomLayers, "top" => topLayers, _ => -1 } : -1;
        if (count < 0 || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index))
        {
            throw new ModelFileException(file, field, "is not a layer name (bottom.N or top.N)");
        }

        if (index >= count) throw new ModelFileException(file, field, $"no such layer: the {parts[0]} MLP has {count} Linear layer(s), numbered from 0");
        return $"{parts[0]}.{index}";
    }

    private static LayerPrecision ParseLayerPrecision(string text, string file, string field) =>
        LayerPrecisions.TryParse(text, out LayerPrecision p) ? p : throw new ModelFileException(file, field, $"'{text}' is not one of fp32, fp16, int8");

    /// <summary>Reads typed fields with the file and the field's JSON path in every error.</summary>
    private readonly struct FieldReader(JsonElement obj, string file, string prefix)
    {
        private ModelFileException Error(string name, string problem) => new(file, prefix + name, problem);

        private JsonElement? Get(string name) =>
            obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

        public string String(string name, string? fallback)
        {
            JsonElement? v = Get(name);
            if (v is null) return fallback ?? throw Error(name, "missing");
            return v.Value.ValueKind == JsonValueKind.String ? v.Value.GetString()! : throw Error(name, "must be a string");
        }

        public long Long(string name, long min, long? fallback = null)
        {
            JsonElement? v = Get(name);
            if (v is null) return fallback ?? throw Error(name, "missing");
            if (v.Value.ValueKind != JsonValueKind.Number || !v.Value.TryGetInt64(out long x)) throw Error(name, "must be an integer");
            return x >= min ? x : throw Error(name, $"is {x}, must be >= {min}");
        }

        public int Int(string name, int min, int? fallback = null)
        {
            long x = Long(name, min, fallback);
            return x <= int.MaxValue ? (int)x : throw Error(name, $"is {x}, too large");
        }

        public double Double(string name, double fallback)
        {
            JsonElement? v = Get(name);
            if (v is null) return fallback;
            return v.Value.ValueKind == JsonValueKind.Number ? v.Value.GetDouble() : throw Error(name, "must be a number");
        }

        public bool Bool(string name, bool fallback)
        {
            JsonElement? v = Get(name);
            if (v is null) return fallback;
            return v.Value.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Error(name, "must be true or false"),
            };
        }

        public int[] IntArray(string name, int min, bool allowEmpty)
        {
            JsonElement? v = Get(name);
            if (v is null || v.Value.ValueKind != JsonValueKind.Array) throw Error(name, "missing or not an array");
            var result = new int[v.Value.GetArrayLength()];
            if (result.Length == 0 && !allowEmpty) throw Error(name, "must not be empty");
            int i = 0;
            foreach (JsonElement e in v.Value.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int x)) throw Error($"{name}[{i}]", "must be an integer");
                if (x < min) throw Error($"{name}[{i}]", $"is {x}, must be >= {min}");
                result[i++] = x;
            }
            return result;
        }
    }
}
