using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Recsys.DenseCompute.Models;

/// <summary>A named synthetic DLRM shape. Rows are multiplied by the caller's scale.</summary>
public sealed record DemoPreset(string Name, int DenseFeatures, int[] BottomMlp, int[] TopMlp, int Tables, long Rows, int Dim, int Lookups, string Storage, int Shards)
{
    /// <summary>
    /// Public shapes: kaggle-small follows the reference DLRM's Criteo Kaggle config with small
    /// tables; RMC1-3 follow the DeepRecSys recommendation model classes.
    /// </summary>
    public static readonly DemoPreset[] All =
    [
        new("kaggle-small", 13, [512, 256, 64, 16], [512, 256, 1], 26, 20_000, 16, 1, "fp32", 2),
        new("rmc1", 128, [64, 32], [256, 64, 1], 8, 4_000_000, 32, 80, "fp32", 2),
        new("rmc2", 256, [128, 64], [128, 64, 1], 32, 500_000, 64, 120, "fp32", 2),
        new("rmc3", 2560, [1024, 256, 32], [512, 256, 1], 10, 2_000_000, 32, 20, "fp32", 2),
    ];

    public static DemoPreset Find(string name) =>
        All.FirstOrDefault(p => p.Name == name)
        ?? throw new ArgumentException($"unknown preset '{name}' (one of {string.Join(", ", All.Select(p => p.Name))})", nameof(name));
}

/// <summary>
/// Writes a deterministic synthetic DLRM (model.json + weights.safetensors + sample-request.json)
/// initialised as the reference DLRM initialises: embeddings U(-1/sqrt(n), 1/sqrt(n)), Linear
/// weights N(0, sqrt(2/(in+out))), biases N(0, sqrt(1/out)). n is the preset's full row count
/// even when --scale shrinks the tables, so a scaled-down model keeps the full model's pooled
/// magnitudes (and scores) instead of saturating the sigmoid. The same preset, scale and seed
/// always give the same bytes.
/// </summary>
public static class DemoModel
{
    public static string Write(string versionDirectory, DemoPreset preset, double scale = 1.0, string? storage = null, ulong seed = 42, IProgress<double>? progress = null)
    {
        if (scale <= 0) throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must be > 0");
        Directory.CreateDirectory(versionDirectory);
        long rows = Math.Max(16, (long)Math.Round(preset.Rows * scale));
        storage ??= preset.Storage;

        var tables = new JsonArray();
        for (int t = 0; t < preset.Tables; t++)
        {
            tables.Add(new JsonObject
            {
                ["name"] = $"C{t + 1}",
                ["rows"] = rows,
                ["dim"] = preset.Dim,
                ["pooling"] = "sum",
                ["storage"] = storage,
                ["shards"] = preset.Shards,
                ["lookups"] = preset.Lookups,
            });
        }
        var json = new JsonObject
        {
            ["kind"] = "dlrm",
            ["preset"] = preset.Name,
            ["dense_features"] = preset.DenseFeatures,
            ["bottom_mlp"] = new JsonArray(preset.BottomMlp.Select(v => (JsonNode)v).ToArray()),
            ["top_mlp"] = new JsonArray(preset.TopMlp.Select(v => (JsonNode)v).ToArray()),
            ["interaction"] = "dot",
            ["interaction_itself"] = false,
            ["tables"] = tables,
            ["weights"] = "weights.safetensors",
        };
        string modelJson = Path.Combine(versionDirectory, "model.json");
        File.WriteAllText(modelJson, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        DlrmSpec spec = ModelSpec.Load(modelJson).RequireDlrm();

        var shapes = new List<(string, long[])>();
        for (int t = 0; t < spec.Tables.Length; t++) shapes.Add((DlrmSpec.EmbeddingWeightName(t), [rows, spec.Tables[t].Dim]));
        AddMlpShapes(shapes, spec.BottomMlp, spec.DenseFeatures, DlrmSpec.BottomWeightName, DlrmSpec.BottomBiasName);
        AddMlpShapes(shapes, spec.TopMlp, spec.InteractionOutput, DlrmSpec.TopWeightName, DlrmSpec.TopBiasName);

        var rng = new SplitMix(seed);
        long total = shapes.Sum(s => s.Item2.Aggregate(1L, (a, b) => a * b)), written = 0;
        var chunk = new float[1 << 16];
        using (var writer = new SafeTensorsWriter(Path.Combine(versionDirectory, spec.WeightsFile), shapes))
        {
            foreach (var (name, shape) in shapes)
            {
                long count = shape.Aggregate(1L, (a, b) => a * b);
                Func<float> draw = name.StartsWith("emb_l.", StringComparison.Ordinal)
                    ? Uniform(rng, (float)Math.Sqrt(1.0 / Math.Max(shape[0], preset.Rows)))
                    : name.EndsWith(".weight", StringComparison.Ordinal)
                        ? Normal(rng, Math.Sqrt(2.0 / (shape[0] + shape[1])))
                        : Normal(rng, Math.Sqrt(1.0 / shape[0]));
                for (long done = 0; done < count;)
                {
                    int n = (int)Math.Min(chunk.Length, count - done);
                    for (int i = 0; i < n; i++) chunk[i] = draw();
                    writer.Write(chunk.AsSpan(0, n));
                    done += n;
                    written += n;
                    progress?.Report((double)written / total);
                }
            }
        }
        File.WriteAllText(Path.Combine(versionDirectory, "sample-request.json"), SampleRequest(spec, batch: 4, seed: seed + 1));
        return modelJson;
    }

    private static void AddMlpShapes(List<(string, long[])> shapes, int[] widths, int inputs, Func<int, string> weight, Func<int, string> bias)
    {
        for (int i = 0; i < widths.Length; i++)
        {
            shapes.Add((weight(i), [widths[i], inputs]));
            shapes.Add((bias(i), [widths[i]]));
            inputs = widths[i];
        }
    }

    /// <summary>A ranking request body for the spec: batch samples, each table's "lookups" ids per bag.</summary>
    public static string SampleRequest(DlrmSpec spec, int batch, ulong seed)
    {
        var rng = new SplitMix(seed);
        var sb = new StringBuilder();
        sb.Append("{\"dense\": [");
        for (int b = 0; b < batch; b++)
        {
            if (b > 0) sb.Append(", ");
            sb.Append('[');
            for (int f = 0; f < spec.DenseFeatures; f++)
            {
                if (f > 0) sb.Append(", ");
                sb.Append(Math.Round(rng.NextDouble() * 2, 3).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            sb.Append(']');
        }
        sb.Append("], \"sparse\": {");
        for (int t = 0; t < spec.Tables.Length; t++)
        {
            TableSpec table = spec.Tables[t];
            if (t > 0) sb.Append(", ");
            sb.Append('"').Append(table.Name).Append("\": [");
            for (int b = 0; b < batch; b++)
            {
                if (b > 0) sb.Append(", ");
                sb.Append('[');
                for (int j = 0; j < Math.Max(1, table.Lookups); j++)
                {
                    if (j > 0) sb.Append(", ");
                    sb.Append((long)(rng.NextDouble() * table.Rows));
                }
                sb.Append(']');
            }
            sb.Append(']');
        }
        sb.Append("}}");
        return sb.ToString();
    }

    private static Func<float> Uniform(SplitMix rng, float bound) => () => (float)((rng.NextDouble() * 2 - 1) * bound);

    private static Func<float> Normal(SplitMix rng, double std) => () => (float)(std * rng.NextGaussian());
}
