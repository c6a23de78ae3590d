using Recsys.EmbeddingGrains.Cache;
using Recsys.EmbeddingGrains.Storage;

namespace Recsys.EmbeddingGrains.Serving;

/// <summary>
/// How a shard spends its row-memory grant. If the grant holds every row, the rows live in a flat
/// array and FASTER keeps only a small write-behind log in memory (lookups never read it). If not,
/// three quarters of the grant become the hot-row cache and one quarter FASTER's in-memory log;
/// the rest of the rows are read from FASTER's disk log. FASTER's hash index (~16 bytes a row) is
/// outside the grant.
/// </summary>
public sealed record ShardMemoryPlan(bool Resident, long CacheRows, StoreLayout Store)
{
    public static ShardMemoryPlan For(long slots, int rowBytes, long grantBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(grantBytes);
        long shardBytes = slots * rowBytes;
        if (grantBytes >= shardBytes)
        {
            // Write-behind only: loading and upserts stream through it to disk.
            return new ShardMemoryPlan(true, slots, StoreLayout.For(slots, rowBytes, 0));
        }
        long cacheRows = Math.Max(HotRowCache.Ways, grantBytes * 3 / 4 / rowBytes);
        return new ShardMemoryPlan(false, cacheRows, StoreLayout.For(slots, rowBytes, grantBytes / 4));
    }
}
