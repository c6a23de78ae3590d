using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Sharding;

namespace Recsys.EmbeddingGrains.Tests;

public class ShardMapTests
{
    [Theory]
    [InlineData(1000, 1)]
    [InlineData(1000, 3)]
    [InlineData(7, 7)]
    [InlineData(10, 4)]
    public void Slots_of_all_shards_cover_the_table_once(long rows, int shards)
    {
        var map = new ShardMap(rows, shards);
        long total = 0;
        for (int s = 0; s < shards; s++)
        {
            long slots = map.SlotsIn(s);
            total += slots;
            for (long slot = 0; slot < slots; slot++)
            {
                long id = map.GlobalId(s, slot);
                Assert.InRange(id, 0, rows - 1);
                Assert.Equal(s, map.ShardOf(id));
                Assert.Equal(slot, map.SlotOf(id));
            }
            Assert.True(map.GlobalId(s, slots) >= rows, $"shard {s} would own id {map.GlobalId(s, slots)} past its {slots} slots");
        }
        Assert.Equal(rows, total);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(3, false)]
    [InlineData(3, true)]
    [InlineData(8, true)]
    public void Split_matches_a_naive_split(int shards, bool weighted)
    {
        var rng = new Random(shards * 31 + (weighted ? 1 : 0));
        var map = new ShardMap(5000, shards);
        for (int trial = 0; trial < 20; trial++)
        {
            (long[] ids, int[] offsets, float[]? weights) = TestModels.Request(rng, map.Rows, bags: rng.Next(0, 40), maxBag: 12, weighted);
            PooledLookupRequest[] split = map.Split(ids, offsets, weights);
            Assert.Equal(shards, split.Length);
            for (int s = 0; s < shards; s++)
            {
                // Naive: per bag, the ids (and weights) of shard s in their original order.
                var naiveIds = new List<long>();
                var naiveWeights = new List<float>();
                var naiveOffsets = new List<int> { 0 };
                for (int b = 0; b < offsets.Length - 1; b++)
                {
                    for (int j = offsets[b]; j < offsets[b + 1]; j++)
                    {
                        if (ids[j] % shards != s) continue;
                        naiveIds.Add(ids[j]);
                        if (weights != null) naiveWeights.Add(weights[j]);
                    }
                    naiveOffsets.Add(naiveIds.Count);
                }
                Assert.Equal(naiveIds, split[s].Ids);
                Assert.Equal(naiveOffsets, split[s].Offsets);
                if (weights is null || weights.Length == 0) Assert.True(split[s].Weights is null || split[s].Weights!.Length == 0);
                else Assert.Equal(naiveWeights, split[s].Weights!);
            }
        }
    }

    [Fact]
    public void Split_rejects_bad_requests_naming_the_field()
    {
        var map = new ShardMap(100, 3);
        Assert.Contains("Ids[1] = 100", Assert.Throws<ArgumentOutOfRangeException>(() => map.Split([1, 100], [0, 2], default)).Message);
        Assert.Contains("not monotonic", Assert.Throws<ArgumentException>(() => map.Split([1, 2], [0, 2, 1, 2], default)).Message);
        Assert.Contains("must equal the number of Ids", Assert.Throws<ArgumentException>(() => map.Split([1, 2], [0, 3], default)).Message);
        Assert.Contains("Weights has 1 entries for 2 Ids", Assert.Throws<ArgumentException>(() => map.Split([1, 2], [0, 2], [1f])).Message);
    }
}
