using Recsys.EmbeddingGrains.Cache;
using Recsys.EmbeddingGrains.Storage;

namespace Recsys.EmbeddingGrains.Serving;

/// <summary>
/// How a shard spends its row-memory grant. If the grant holds every row, the rows live in a flat
/// array and FASTER keeps only a small write-behind log in memory (lookups never read it). If not,
/// three quarters of the grant become the hot-row cache and one quarter FASTER's in-memory log;
/// the rest of the rows are read from FASTER's disk log. FASTER's hash index (~16 bytes a row) and
/// a resident shard's write-behind log (at most 8 MiB) are outside the grant.
/// </summary>
public sealed record ShardMemoryPlan(bool Resident, long CacheRows, StoreLayout Store)
{
    /// <summary>FASTER's in-memory log of a resident shard (outside the grant: the rows are already in the flat array).</summary>
    public const long WriteBehindBytes = 8 << 20;

    public static ShardMemoryPlan For(long slots, int rowBytes, long grantBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(grantBytes);
        long shardBytes = slots * rowBytes;
        if (grantBytes >= shardBytes)
        {
            // Write-behind only: loading and upserts stream through it to disk. Each flushed page
            // costs an fsync, so pages stay large (up to 1 MiB) even though lookups never read them.
            return new ShardMemoryPlan(true, slots, StoreLayout.For(slots, rowBytes, Math.Min(shardBytes, WriteBehindBytes)));
        }
        long cacheRows = Math.Max(HotRowCache.Ways, grantBytes * 3 / 4 / rowBytes);
        return new ShardMemoryPlan(false, cacheRows, StoreLayout.For(slots, rowBytes, grantBytes / 4));
    }
}
