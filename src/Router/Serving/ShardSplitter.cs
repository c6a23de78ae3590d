using System.Numerics;
using Recsys.DenseCompute.Dlrm;
using Recsys.EmbeddingGrains.Contracts;

namespace Recsys.Router.Serving;

/// <summary>
/// One table's CSR request as per-shard requests (row i lives in shard i mod S, as
/// <c>ShardMap</c> says). Every shard request keeps all bags, so partial sums come back aligned;
/// shards that own none of the ids get no call at all. With one shard the request's own arrays
/// become the message (no copy); otherwise each id is copied once, into exact-size arrays the
/// messages own. Ids are not validated again here: the request parser did, and each shard checks
/// its slice before touching a row.
/// </summary>
public static class ShardSplitter
{
    /// <summary>requests[s] is null when shard s owns none of the ids.</summary>
    public static PooledLookupRequest?[] Split(SparseFeature feature, long rows, int shards)
    {
        ArgumentNullException.ThrowIfNull(feature);
        if (shards < 1 || shards > rows) throw new ArgumentOutOfRangeException(nameof(shards), shards, $"shards must be in [1, {rows}] for {rows} rows");
        if (shards == 1)
        {
            return feature.Ids.Length == 0 ? [null] : [new PooledLookupRequest { Ids = feature.Ids, Offsets = feature.Offsets, Weights = feature.Weights }];
        }
        long[] ids = feature.Ids;
        int[] offsets = feature.Offsets;
        float[]? weights = feature.Weights;
        int bags = offsets.Length - 1;
        uint s64 = (uint)shards;
        // Shard counts are usually powers of two: a mask instead of a 64-bit division per id, twice per id.
        ulong mask = BitOperations.IsPow2(shards) ? (ulong)shards - 1 : 0;

        Span<int> cursor = shards <= 256 ? stackalloc int[shards] : new int[shards];
        // A negative id lands on some shard as a huge unsigned value, which that shard rejects as out of range.
        if (mask != 0)
        {
            foreach (long id in ids) cursor[(int)((ulong)id & mask)]++;
        }
        else
        {
            foreach (long id in ids) cursor[(int)((ulong)id % s64)]++;
        }

        var shardIds = new long[shards][];
        var shardOffsets = new int[shards][];
        var shardWeights = weights is null ? null : new float[shards][];
        for (int s = 0; s < shards; s++)
        {
            if (cursor[s] == 0) continue;
            shardIds[s] = new long[cursor[s]];
            shardOffsets[s] = new int[bags + 1];
            if (shardWeights is not null) shardWeights[s] = new float[cursor[s]];
        }

        cursor.Clear();
        for (int b = 0; b < bags; b++)
        {
            for (int j = offsets[b]; j < offsets[b + 1]; j++)
            {
                long id = ids[j];
                int s = mask != 0 ? (int)((ulong)id & mask) : (int)((ulong)id % s64);
                int at = cursor[s]++;
                shardIds[s][at] = id;
                if (shardWeights is not null) shardWeights[s][at] = weights![j];
            }
            for (int s = 0; s < shards; s++)
            {
                if (shardOffsets[s] is { } o) o[b + 1] = cursor[s];
            }
        }

        var requests = new PooledLookupRequest?[shards];
        for (int s = 0; s < shards; s++)
        {
            if (shardIds[s] is null) continue;
            requests[s] = new PooledLookupRequest { Ids = shardIds[s], Offsets = shardOffsets[s], Weights = shardWeights?[s] };
        }
        return requests;
    }
}
