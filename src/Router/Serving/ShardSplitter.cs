using Recsys.DenseCompute.Dlrm;
using Recsys.EmbeddingGrains.Contracts;

namespace Recsys.Router.Serving;

/// <summary>
/// Splits one table's CSR request into per-shard CSR requests (row i lives in shard i mod S).
/// Every shard request keeps all bags (empty where the shard owns none of a bag's ids) so the
/// partial sums come back aligned and are added without any index bookkeeping.
/// </summary>
public static class ShardSplitter
{
    /// <summary>requests[s] is null when shard s owns none of the ids (no call is made to it).</summary>
    public static PooledLookupRequest?[] Split(SparseFeature feature, int shards)
    {
        var result = new PooledLookupRequest?[shards];
        long[] ids = feature.Ids;
        if (shards == 1)
        {
            if (ids.Length > 0) result[0] = new PooledLookupRequest { Ids = ids, Offsets = feature.Offsets, Weights = feature.Weights };
            return result;
        }
        Span<int> counts = shards <= 256 ? stackalloc int[shards] : new int[shards];
        counts.Clear();
        foreach (long id in ids) counts[(int)(id % shards)]++;

        int bags = feature.Bags;
        var shardIds = new long[shards][];
        var shardOffsets = new int[shards][];
        var shardWeights = new float[]?[shards];
        for (int s = 0; s < shards; s++)
        {
            if (counts[s] == 0) continue;
            shardIds[s] = new long[counts[s]];
            shardOffsets[s] = new int[bags + 1];
            if (feature.Weights is not null) shardWeights[s] = new float[counts[s]];
        }
        counts.Clear();
        int[] offsets = feature.Offsets;
        float[]? weights = feature.Weights;
        for (int b = 0; b < bags; b++)
        {
            for (int j = offsets[b]; j < offsets[b + 1]; j++)
            {
                int s = (int)(ids[j] % shards);
                int k = counts[s]++;
                shardIds[s][k] = ids[j];
                if (weights is not null) shardWeights[s]![k] = weights[j];
            }
            for (int s = 0; s < shards; s++)
            {
                if (shardOffsets[s] is { } o) o[b + 1] = counts[s];
            }
        }
        for (int s = 0; s < shards; s++)
        {
            if (shardIds[s] is { } sid) result[s] = new PooledLookupRequest { Ids = sid, Offsets = shardOffsets[s], Weights = shardWeights[s] };
        }
        return result;
    }
}
