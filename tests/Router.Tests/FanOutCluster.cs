using System.Text.Json.Nodes;
using Recsys.DenseCompute.Dlrm;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Batching;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;

namespace Recsys.Router.Tests;

/// <summary>
/// The per-silo lookup path's cluster: the dot fixture with 5, 6 and 8 shards per table, so both
/// embedding silos hold several shards of one batch.
/// </summary>
public sealed class FanOutCluster() : ShardedTestCluster(Model)
{
    public const string Model = "fanout";
    public static readonly int[] ShardsPerTable = [5, 6, 8];

    protected override void Shape(JsonArray tables)
    {
        for (int t = 0; t < tables.Count; t++) tables[t]!["shards"] = ShardsPerTable[t];
    }

    /// <summary>A served version with its own metrics and the per-silo path on.</summary>
    public Task<ServedModel> ServeAsync() => ServeAsync(perSilo: true, new ServingMetrics());

    public IEmbeddingShardGrain Shard(int table, int shard) =>
        FrontEnd.GetGrain<IEmbeddingShardGrain>(ShardKey.Format(Model, "1", Spec.Tables[table].Name, shard));

    /// <summary>touched[t][s]: the batch has an id owned by shard s of table t (id mod S), computed apart from the code under test.</summary>
    public static bool[][] Touched(RankBatch batch) =>
        batch.Sparse.Select((f, t) =>
        {
            var touched = new bool[ShardsPerTable[t]];
            foreach (long id in f.Ids) touched[id % touched.Length] = true;
            return touched;
        }).ToArray();

    public async Task<ShardStatus[][]> StatusesAsync() =>
        await Task.WhenAll(ShardsPerTable.Select((shards, t) => Task.WhenAll(Enumerable.Range(0, shards).Select(s => Shard(t, s).GetStatus()))));
}
