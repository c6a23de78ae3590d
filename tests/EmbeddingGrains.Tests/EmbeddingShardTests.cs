using Microsoft.Extensions.Logging.Abstractions;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Loading;
using Recsys.EmbeddingGrains.Serving;
using Recsys.EmbeddingGrains.Sharding;

namespace Recsys.EmbeddingGrains.Tests;

/// <summary>The shard engine in-process (no Orleans): resident path, FASTER path with disk reads, recovery.</summary>
public sealed class EmbeddingShardTests : IDisposable
{
    private readonly string _root = TestModels.TempRoot("shard");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static EmbeddingShard OpenLoaded(string dir, string modelDir, TestTable table, int tableIndex, int shard, long grant)
    {
        var map = new ShardMap(table.Rows, table.Shards);
        EmbeddingShard s = EmbeddingShard.Open(map, shard, table.Storage, table.Dim, grant, dir);
        using SafeTensorsFile weights = SafeTensorsFile.Open(Path.Combine(modelDir, "weights.safetensors"));
        ShardLoader.Load(s, weights, DlrmSpec.EmbeddingWeightName(tableIndex), new ShardLoadProgress().Start("t", s.Slots), NullLogger.Instance, "t", default);
        return s;
    }

    private static async Task<float[]> PoolOverShards(EmbeddingShard[] shards, ShardMap map, int dim, long[] ids, int[] offsets, float[]? weights)
    {
        PooledLookupRequest[] split = map.Split(ids, offsets, weights);
        var sum = new float[(offsets.Length - 1) * dim];
        for (int s = 0; s < shards.Length; s++)
        {
            var partial = new float[sum.Length];
            await shards[s].LookupAsync(split[s].Ids, split[s].Offsets, split[s].Weights, partial);
            for (int i = 0; i < sum.Length; i++) sum[i] += partial[i];
        }
        return sum;
    }

    [Theory]
    [InlineData(RowFormat.Fp32)]
    [InlineData(RowFormat.Fp16)]
    [InlineData(RowFormat.Int8)]
    [InlineData(RowFormat.Int4)]
    public async Task Resident_and_quarter_budget_shards_equal_the_whole_table_bag(RowFormat format)
    {
        var table = new TestTable("t", 12000, 33, format, 2);
        float[] values = TestModels.Write(_root, "m", "1", [table], seed: 7)[0];
        string modelDir = Path.Combine(_root, "m", "1");
        var map = new ShardMap(table.Rows, table.Shards);
        int rowBytes = RowLayout.RowBytes(format, table.Dim);
        var resident = new EmbeddingShard[2];
        var spilled = new EmbeddingShard[2];
        try
        {
            for (int s = 0; s < 2; s++)
            {
                long shardBytes = map.SlotsIn(s) * rowBytes;
                resident[s] = OpenLoaded(Path.Combine(_root, "res", $"{s}"), modelDir, table, 0, s, shardBytes);
                spilled[s] = OpenLoaded(Path.Combine(_root, "spill", $"{s}"), modelDir, table, 0, s, shardBytes / 4);
                Assert.True(resident[s].IsResident);
                Assert.False(spilled[s].IsResident);
                Assert.True(spilled[s].Plan.Store.LogMemoryBytes < shardBytes / 2, $"FASTER keeps {spilled[s].Plan.Store.LogMemoryBytes} bytes of a {shardBytes}-byte shard in memory");
            }
            var rng = new Random(11);
            for (int trial = 0; trial < 6; trial++)
            {
                (long[] ids, int[] offsets, float[]? weights) = TestModels.Request(rng, table.Rows, bags: 64, maxBag: 30, weighted: trial % 2 == 1);
                float[] expected = TestModels.Reference(values, table, ids, offsets, weights);
                TestModels.AssertClose(expected, await PoolOverShards(resident, map, table.Dim, ids, offsets, weights), $"resident {format} trial {trial}");
                TestModels.AssertClose(expected, await PoolOverShards(spilled, map, table.Dim, ids, offsets, weights), $"quarter budget {format} trial {trial}");
            }
            Assert.True(spilled.Sum(s => s.DiskReads) > 0, "no read of the quarter-budget shards went to FASTER's disk log");
            Assert.True(spilled.Sum(s => s.CacheHits) > 0, "the hot-row cache never hit");
            Assert.Equal(0, resident.Sum(s => s.DiskReads));
        }
        finally
        {
            foreach (EmbeddingShard? s in resident.Concat(spilled)) s?.Dispose();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Upserts_are_visible_and_survive_checkpoint_and_recovery(bool resident)
    {
        var table = new TestTable("t", 800, 16, RowFormat.Int8, 2);
        float[] values = TestModels.Write(_root, "m", "1", [table], seed: 3)[0];
        string dir = Path.Combine(_root, "store");
        var map = new ShardMap(table.Rows, table.Shards);
        long shardBytes = map.SlotsIn(1) * RowLayout.RowBytes(table.Storage, table.Dim);
        long grant = resident ? shardBytes : shardBytes / 4;
        long[] upserted = [1, 3, 799, 401];
        var rng = new Random(5);
        float[] newValues = Enumerable.Range(0, upserted.Length * table.Dim).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        for (int k = 0; k < upserted.Length; k++) newValues.AsSpan(k * table.Dim, table.Dim).CopyTo(values.AsSpan((int)upserted[k] * table.Dim));
        long[] ids = [1, 5, 3, 799, 401, 401, 7];
        int[] offsets = [0, 3, 3, 7];
        float[] expected = TestModels.Reference(values, table, ids, offsets, null);

        using (EmbeddingShard shard = OpenLoaded(dir, Path.Combine(_root, "m", "1"), table, 0, 1, grant))
        {
            await shard.CheckpointAsync();
            var before = new float[3 * table.Dim];
            await shard.LookupAsync(ids, offsets, null, before); // warms the cache with the old rows
            shard.Upsert(upserted, newValues);
            var after = new float[3 * table.Dim];
            await shard.LookupAsync(ids, offsets, null, after);
            TestModels.AssertClose(expected, after, "after upsert");
            await shard.CheckpointAsync();
        }
        using (EmbeddingShard reopened = EmbeddingShard.Open(map, 1, table.Storage, table.Dim, grant, dir))
        {
            await reopened.RecoverAsync();
            reopened.WarmFromStore();
            var recovered = new float[3 * table.Dim];
            await reopened.LookupAsync(ids, offsets, null, recovered);
            TestModels.AssertClose(expected, recovered, "after recovery");
        }
    }
}
