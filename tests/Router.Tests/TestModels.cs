using System.Text.Json.Nodes;

namespace Recsys.Router.Tests;

/// <summary>Writes fixture models into a test server's repository.</summary>
public static class TestModels
{
    /// <summary>Copies the files of a fixture version folder (all, or only the named ones) into <paramref name="to"/>.</summary>
    public static void Copy(string from, string to, params string[] only)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            if (only.Length == 0 || only.Contains(Path.GetFileName(file))) File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }
    }

    /// <summary>
    /// Copies a DLRM fixture into <paramref name="target"/> (a version folder) with per-table shards
    /// (cycled over the tables) and optionally another row format, plus its request as sample-request.json.
    /// </summary>
    public static void WriteDlrm(string fixture, string target, int[] shards, string? storage = null)
    {
        string source = RouterCluster.FixtureDirectory(fixture);
        Directory.CreateDirectory(target);
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "model.json")))!.AsObject();
        JsonArray tables = spec["tables"]!.AsArray();
        for (int t = 0; t < tables.Count; t++)
        {
            tables[t]!["shards"] = shards[t % shards.Length];
            if (storage is not null) tables[t]!["storage"] = storage;
        }
        // int8/int4 fixtures ship FBGEMM-prepacked rows; fp16 rows are encoded from the fp32 tensors.
        string weights = storage is "int8" or "int4" ? $"weights-{storage}.safetensors" : "weights.safetensors";
        spec["weights"] = weights;
        File.WriteAllText(Path.Combine(target, "model.json"), spec.ToJsonString());
        File.Copy(Path.Combine(source, weights), Path.Combine(target, weights), overwrite: true);
        File.Copy(Path.Combine(source, "request.json"), Path.Combine(target, "sample-request.json"), overwrite: true);
    }
}
