using System.Numerics;

namespace Recsys.EmbeddingGrains.Storage;

/// <summary>
/// Explicit FASTER sizes for one shard store. FASTER's defaults (a 16 GB in-memory log, a 64 MB
/// hash index) would be allocated per store; a silo hosts dozens of shards, so every size here is
/// derived from the shard's own row count, row width and memory grant.
/// </summary>
public sealed record StoreLayout(long IndexBytes, long LogMemoryBytes, long PageBytes, long SegmentBytes, int RecordBytes)
{
    /// <summary>Hash bucket size in FASTER (8 entries of 8 bytes, one of them the overflow pointer).</summary>
    private const int BucketBytes = 64;
    private const long MinPageBytes = 4096;
    private const long MaxPageBytes = 1 << 22;
    private const long MaxSegmentBytes = 1L << 30;

    /// <summary>Log record of a row: RecordInfo (8) + long key (8) + SpanByte length (4) + row, 8-aligned.</summary>
    public static int RecordBytesFor(int rowBytes) => 8 + 8 + ((4 + rowBytes + 7) & ~7);

    /// <param name="slots">Rows the shard holds.</param>
    /// <param name="rowBytes">Encoded row width.</param>
    /// <param name="logMemoryBudget">Bytes the in-memory part of the log may use; rounded down to
    /// a power of two of pages, never below 4 pages (FASTER needs a few pages in flight to flush).</param>
    public static StoreLayout For(long slots, int rowBytes, long logMemoryBudget)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(rowBytes, 1);
        int record = RecordBytesFor(rowBytes);

        // About 4 keys per bucket: the 7 entries of a bucket rarely overflow, and the index
        // costs ~16 bytes a row, small beside the row itself.
        long buckets = (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(64, slots / 4));

        // A page holds at least 8 records; otherwise the largest page that leaves 8 pages in memory.
        long minPage = Math.Max(MinPageBytes, (long)BitOperations.RoundUpToPowerOf2((ulong)record * 8));
        long page = Math.Clamp(FloorPow2(Math.Max(1, logMemoryBudget / 8)), minPage, Math.Max(minPage, MaxPageBytes));
        long memory = Math.Max(4 * page, FloorPow2(Math.Max(1, logMemoryBudget)));

        // Segments (files) sized to the expected log, so a small shard does not create 1 GiB files.
        long expectedLog = slots * record;
        long segment = Math.Clamp((long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(1, expectedLog)), Math.Max(page, 1 << 20), MaxSegmentBytes);
        return new StoreLayout(buckets * BucketBytes, memory, page, segment, record);
    }

    private static long FloorPow2(long x) => x <= 1 ? 1 : 1L << (63 - BitOperations.LeadingZeroCount((ulong)x));
}
