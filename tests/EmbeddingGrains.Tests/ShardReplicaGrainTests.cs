using System.Text.Json.Nodes;
using Recsys.DenseCompute.Embeddings;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Placement;
using Recsys.EmbeddingGrains.Sharding;

namespace Recsys.EmbeddingGrains.Tests;

/// <summary>Replicas of a shard in the in-process cluster: separate activations on separate silos, same rows.</summary>
[Collection(ShardClusterCollection.Name)]
public sealed class ShardReplicaGrainTests(ShardCluster fixture)
{
    private static readonly TestTable Table = new("rep", 1000, 12, RowFormat.Int8, 3);

    /// <summary>A model with 2 replicas per shard, written next to the fixture's models (shards read model.json when they activate).</summary>
    private float[] WriteReplicatedModel(string model)
    {
        float[] values = TestModels.Write(fixture.Models, model, "1", [Table], seed: 7)[0];
        string path = Path.Combine(fixture.Models, model, "1", "model.json");
        JsonNode spec = JsonNode.Parse(File.ReadAllText(path))!;
        spec["tables"]![0]!["replicas"] = 2;
        File.WriteAllText(path, spec.ToJsonString());
        return values;
    }

    [Fact]
    public async Task Two_replicas_of_a_shard_activate_on_different_silos_and_answer_identical_rows()
    {
        float[] values = WriteReplicatedModel("replicas");
        SiloAddress[] hosts = fixture.EmbeddingSilos.Select(h => h.SiloAddress).ToArray();
        Assert.True(hosts.Length >= 2, $"the fixture should run at least 2 embedding silos, has {hosts.Length}");
        var map = new ShardMap(Table.Rows, Table.Shards);
        var rng = new Random(5);
        (long[] ids, int[] offsets, float[]? weights) = TestModels.Request(rng, Table.Rows, bags: 24, maxBag: 20, weighted: true);
        PooledLookupRequest[] split = map.Split(ids, offsets, weights);
        var sums = new float[2][];
        for (int r = 0; r < 2; r++)
        {
            sums[r] = new float[(offsets.Length - 1) * Table.Dim];
            for (int s = 0; s < Table.Shards; s++)
            {
                IEmbeddingShardGrain replica = fixture.Grains.GetGrain<IEmbeddingShardGrain>(ShardKey.Format("replicas", "1", Table.Name, s, r));
                ShardStatus status = await replica.GetStatus();
                // Each replica is on its own rank of the base key's ranking: siblings on different silos.
                string baseGrain = fixture.Grains.GetGrain<IEmbeddingShardGrain>(ShardKey.Format("replicas", "1", Table.Name, s)).GetGrainId().ToString();
                Assert.Equal(ShardRanking.Top(baseGrain, hosts, 2)[r], status.SiloAddress);
                Assert.Equal(map.SlotsIn(s), status.Rows);
                Assert.False(status.RecoveredFromCheckpoint, $"replica {r} of shard {s} recovered a store: each replica must load its own");
                PooledLookupResult part = await replica.Lookup(split[s]);
                Assert.Equal(r, part.Replica);
                Assert.Equal(status.SiloAddress, part.Silo);
                for (int i = 0; i < sums[r].Length; i++) sums[r][i] += part.Pooled[i];
            }
        }
        // Same rows, same code, same order of adds: bit for bit equal, and right against the reference.
        Assert.Equal(sums[0], sums[1]);
        TestModels.AssertClose(TestModels.Reference(values, Table, ids, offsets, weights), sums[0], "replica 0");
        for (int s = 0; s < Table.Shards; s++)
        {
            ShardStatus r0 = await fixture.Grains.GetGrain<IEmbeddingShardGrain>(ShardKey.Format("replicas", "1", Table.Name, s)).GetStatus();
            ShardStatus r1 = await fixture.Grains.GetGrain<IEmbeddingShardGrain>(ShardKey.Format("replicas", "1", Table.Name, s, 1)).GetStatus();
            Assert.NotEqual(r0.SiloAddress, r1.SiloAddress);
            Assert.Equal("replicas/1/rep/" + s + "/r1", r1.Key);
        }
        // Each replica has its own store folder beside the other's.
        Assert.True(Directory.Exists(Path.Combine(fixture.Data, "replicas", "1", Table.Name, "0")));
        Assert.True(Directory.Exists(Path.Combine(fixture.Data, "replicas", "1", Table.Name, "0-r1")));
    }

    [Fact]
    public async Task A_replica_the_table_does_not_have_is_refused_by_name()
    {
        WriteReplicatedModel("replicas-bad");
        var e = await Assert.ThrowsAnyAsync<Exception>(() => fixture.Grains.GetGrain<IEmbeddingShardGrain>(ShardKey.Format("replicas-bad", "1", Table.Name, 0, 2)).GetStatus());
        Assert.Contains("replica 2 does not exist", e.Message, StringComparison.Ordinal);
        Assert.Contains("2 replica(s)", e.Message, StringComparison.Ordinal);
    }
}
