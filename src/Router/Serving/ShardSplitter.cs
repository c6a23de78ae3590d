using Recsys.DenseCompute.Dlrm;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Sharding;

namespace Recsys.Router.Serving;

/// <summary>
/// One table's CSR request as per-shard requests (<see cref="ShardMap"/>: row i lives in shard
/// i mod S). Every shard request keeps all bags, so partial sums come back aligned; shards that
/// own none of the ids get no call at all.
/// </summary>
public static class ShardSplitter
{
    /// <summary>requests[s] is null when shard s owns none of the ids.</summary>
    public static PooledLookupRequest?[] Split(SparseFeature feature, long rows, int shards)
    {
        if (shards == 1)
        {
            return feature.Ids.Length == 0 ? [null] : [new PooledLookupRequest { Ids = feature.Ids, Offsets = feature.Offsets, Weights = feature.Weights }];
        }
        PooledLookupRequest?[] requests = new ShardMap(rows, shards).Split(feature.Ids, feature.Offsets, feature.Weights);
        for (int s = 0; s < requests.Length; s++)
        {
            if (requests[s]!.Ids.Length == 0) requests[s] = null;
        }
        return requests;
    }
}
