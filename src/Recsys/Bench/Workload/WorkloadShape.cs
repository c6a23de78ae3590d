using System.Text.Json.Nodes;
using Recsys.DenseCompute.Models;

namespace Recsys.Cli.Bench.Workload;

/// <summary>One table as the load generator needs it: where ids may fall, how many per bag, what a row weighs.</summary>
/// <param name="RowBytes">Bytes of one stored row; 0 when only the server's metadata was available.</param>
public sealed record BenchTable(string Name, long Rows, int Lookups, int RowBytes);

/// <summary>What a request body for a model must look like: dense width and the tables with their pooling factors.</summary>
public sealed record WorkloadShape(string Model, int DenseFeatures, IReadOnlyList<BenchTable> Tables)
{
    /// <summary>Ids sent per sample, summed over tables.</summary>
    public long LookupsPerSample => Tables.Sum(t => (long)t.Lookups);

    /// <summary>Embedding bytes pooled per sample; 0 if any row size is unknown.</summary>
    public long PooledBytesPerSample => Tables.Any(t => t.RowBytes == 0) ? 0 : Tables.Sum(t => (long)t.Lookups * t.RowBytes);

    /// <summary>From the model's own spec: rows, the lookups (pooling factor) per table, row bytes.</summary>
    public static WorkloadShape FromSpec(string model, DlrmSpec spec, int? lookupsOverride = null) => new(
        model,
        spec.DenseFeatures,
        spec.Tables.Select(t => new BenchTable(t.Name, t.Rows, lookupsOverride ?? Math.Max(1, t.Lookups), t.RowBytes)).ToArray());

    /// <summary>The newest version's model.json in a repository (the one the server serves by default).</summary>
    public static WorkloadShape FromRepository(string modelsDirectory, string model, int? lookupsOverride = null)
    {
        var repository = new ModelRepository(modelsDirectory);
        if (!ModelRepository.IsSafeName(model)) throw new FormatException($"--model: '{model}' is not a plain directory name");
        string version = repository.NewestVersion(model) ?? throw new FormatException($"--models: no model '{model}' with a model.json under {repository.Root}");
        return FromSpec(model, repository.LoadSpec(model, version).RequireDlrm(), lookupsOverride);
    }

    /// <summary>
    /// From the server's KServe metadata (GET /v2/models/{name}): dense width and table names from
    /// the inputs; rows, pooling factors and row bytes from the "parameters" a Recsys server adds.
    /// <paramref name="rows"/> and <paramref name="lookups"/> override them, and are required when
    /// the server does not say (another KServe server).
    /// </summary>
    public static WorkloadShape FromKServeMetadata(string model, JsonNode metadata, long? rows, int? lookups)
    {
        var declared = new Dictionary<string, JsonNode>(StringComparer.Ordinal);
        foreach (JsonNode? t in metadata["parameters"]?["tables"]?.AsArray() ?? [])
        {
            if (t?["name"]?.GetValue<string>() is { } tableName) declared[tableName] = t;
        }
        int dense = 0;
        var tables = new List<BenchTable>();
        foreach (JsonNode? input in metadata["inputs"]?.AsArray() ?? throw new FormatException($"model '{model}' metadata has no \"inputs\""))
        {
            string name = input?["name"]?.GetValue<string>() ?? throw new FormatException($"model '{model}' metadata: an input has no name");
            if (name == "dense")
            {
                JsonArray shape = input["shape"]!.AsArray();
                dense = shape.Count > 1 ? (int)shape[1]!.GetValue<long>() : 0;
            }
            else if (name.EndsWith(".indices", StringComparison.Ordinal))
            {
                string table = name[..^".indices".Length];
                JsonNode? t = declared.GetValueOrDefault(table);
                long tableRows = rows ?? t?["rows"]?.GetValue<long>()
                    ?? throw new FormatException($"model '{model}': the server does not give the rows of table '{table}'; pass --rows N or --models DIR");
                int tableLookups = lookups ?? t?["lookups"]?.GetValue<int>() ?? 1;
                tables.Add(new BenchTable(table, tableRows, tableLookups, t?["row_bytes"]?.GetValue<int>() ?? 0));
            }
        }
        return tables.Count > 0 ? new WorkloadShape(model, dense, tables) : throw new FormatException($"model '{model}' metadata lists no table inputs (*.indices)");
    }
}
