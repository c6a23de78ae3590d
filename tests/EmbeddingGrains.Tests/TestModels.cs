using System.Text.Json;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.EmbeddingGrains.Tests;

public sealed record TestTable(string Name, long Rows, int Dim, RowFormat Storage, int Shards);

/// <summary>Writes DLRM model versions (model.json + safetensors with only the embedding tables) into a repository folder.</summary>
public static class TestModels
{
    /// <summary>Writes {root}/{model}/{version}/ and returns each table's fp32 values (rows x dim).</summary>
    public static float[][] Write(string root, string model, string version, TestTable[] tables, int seed)
    {
        string dir = Path.Combine(root, model, version);
        Directory.CreateDirectory(dir);
        var json = new
        {
            kind = "dlrm",
            dense_features = 0,
            bottom_mlp = Array.Empty<int>(),
            top_mlp = new[] { 1 },
            interaction = "cat",
            weights = "weights.safetensors",
            tables = tables.Select(t => new { name = t.Name, rows = t.Rows, dim = t.Dim, pooling = "sum", storage = RowLayout.Name(t.Storage), shards = t.Shards }).ToArray(),
        };
        File.WriteAllText(Path.Combine(dir, "model.json"), JsonSerializer.Serialize(json));
        var rng = new Random(seed);
        var values = new float[tables.Length][];
        using var writer = new SafeTensorsWriter(Path.Combine(dir, "weights.safetensors"),
            tables.Select((t, k) => (DlrmSpec.EmbeddingWeightName(k), new[] { t.Rows, (long)t.Dim })).ToArray());
        for (int k = 0; k < tables.Length; k++)
        {
            values[k] = new float[tables[k].Rows * tables[k].Dim];
            for (int i = 0; i < values[k].Length; i++) values[k][i] = (float)(rng.NextDouble() * 2 - 1);
            writer.Write(values[k]);
        }
        return values;
    }

    /// <summary>A random CSR request: bags of 0..maxBag ids (some empty), optional weights.</summary>
    public static (long[] Ids, int[] Offsets, float[]? Weights) Request(Random rng, long rows, int bags, int maxBag, bool weighted)
    {
        var offsets = new int[bags + 1];
        for (int b = 0; b < bags; b++) offsets[b + 1] = offsets[b] + rng.Next(0, maxBag + 1);
        var ids = new long[offsets[^1]];
        for (int j = 0; j < ids.Length; j++) ids[j] = rng.NextInt64(rows);
        float[]? weights = weighted ? Enumerable.Range(0, ids.Length).Select(_ => (float)rng.NextDouble()).ToArray() : null;
        return (ids, offsets, weights);
    }

    /// <summary>DenseCompute's embedding bag over the whole table in the same row format: the reference.</summary>
    public static float[] Reference(float[] values, TestTable table, long[] ids, int[] offsets, float[]? weights)
    {
        using EmbeddingTable whole = EmbeddingTable.FromFloats(values, table.Rows, table.Dim, table.Storage);
        var output = new float[(offsets.Length - 1) * table.Dim];
        EmbeddingBag.Pool(whole, ids, offsets, weights, Pooling.Sum, output);
        return output;
    }

    /// <summary>Sums of the same rows in a different order differ by rounding only.</summary>
    public static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float tolerance = 1e-5f * Math.Max(1f, Math.Abs(expected[i]));
            if (Math.Abs(expected[i] - actual[i]) > tolerance)
            {
                Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]}");
            }
        }
    }

    public static string TempRoot(string name)
    {
        string root = Path.Combine(Path.GetTempPath(), "recsys-shard-tests", $"{name}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        return root;
    }
}
