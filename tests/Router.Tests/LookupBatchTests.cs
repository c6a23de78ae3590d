using Recsys.DenseCompute.Dlrm;
using Recsys.Router.Serving;

namespace Recsys.Router.Tests;

public sealed class LookupBatchTests
{
    [Fact]
    public void Merging_keeps_request_order_and_looks_a_broadcast_bag_up_once()
    {
        // Request A: 2 samples, both tables per sample. Request B: 3 candidates sharing one
        // context bag in table 0 and a bag each in table 1.
        var a = new RankInput(2, [1, 2, 3, 4], [
            new SparseFeature([5, 6, 7], [0, 2, 3], null),
            new SparseFeature([1], [0, 0, 1], [0.5f]),
        ]);
        var b = new RankInput(3, [5, 6, 7, 8, 9, 10], [
            new SparseFeature([9, 8], [0, 2], null),
            new SparseFeature([2, 3, 4], [0, 1, 2, 3], null),
        ], broadcast: [true, false]);

        LookupBatch merged = LookupBatch.Merge([a, b], denseFeatures: 2);

        Assert.Equal(5, merged.Batch);
        Assert.Equal([1f, 2, 3, 4, 5, 6, 7, 8, 9, 10], merged.Dense);
        // Table 0: A's two bags, then B's single context bag: 3 bags for 5 samples.
        Assert.Equal([5L, 6, 7, 9, 8], merged.Tables[0].Ids);
        Assert.Equal([0, 2, 3, 5], merged.Tables[0].Offsets);
        Assert.Equal([0, 1, 2, 2, 2], merged.SampleBag[0]!);
        // Table 1: one bag per sample; weights default to 1 for the request that sent none.
        Assert.Equal([1L, 2, 3, 4], merged.Tables[1].Ids);
        Assert.Equal([0, 0, 1, 2, 3, 4], merged.Tables[1].Offsets);
        Assert.Equal([0.5f, 1, 1, 1], merged.Tables[1].Weights!);
        Assert.Null(merged.SampleBag[1]);
    }

    [Fact]
    public void Splitting_by_shard_keeps_every_bag_and_calls_only_touched_shards()
    {
        // Ids mod 3: 0 -> shard 0, 4 and 7 -> shard 1, nothing on shard 2.
        var feature = new SparseFeature([0, 4, 7, 3], [0, 2, 2, 4], [1f, 2f, 3f, 4f]);

        var requests = ShardSplitter.Split(feature, rows: 9, shards: 3);

        Assert.Equal([0L, 3], requests[0]!.Ids);
        Assert.Equal([0, 1, 1, 2], requests[0]!.Offsets);
        Assert.Equal([1f, 4f], requests[0]!.Weights!);
        Assert.Equal([4L, 7], requests[1]!.Ids);
        Assert.Equal([0, 1, 1, 2], requests[1]!.Offsets);
        Assert.Null(requests[2]);
    }
}
