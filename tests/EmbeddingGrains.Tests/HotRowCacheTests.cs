using Recsys.EmbeddingGrains.Cache;

namespace Recsys.EmbeddingGrains.Tests;

public unsafe class HotRowCacheTests
{
    private const int RowBytes = 8;

    /// <summary>What the shard does on a miss: admit, let the "read" fill the way, commit.</summary>
    private static bool Access(HotRowCache cache, long slot)
    {
        byte* row = cache.TryGet(slot);
        if (row != null)
        {
            Assert.Equal(slot, BitConverter.ToInt64(new ReadOnlySpan<byte>(row, RowBytes)));
            return true;
        }
        byte* admit = cache.TryAdmit(slot);
        if (admit != null) BitConverter.TryWriteBytes(new Span<byte>(admit, RowBytes), slot);
        cache.CommitFills();
        return false;
    }

    [Fact]
    public void Hot_rows_stay_cached_among_rows_seen_once()
    {
        using var cache = new HotRowCache(256, RowBytes);
        for (int round = 0; round < 20; round++)
        {
            for (long slot = 0; slot < 64; slot++) Access(cache, slot);
        }
        int warm = Enumerable.Range(0, 64).Count(s => Access(cache, s));
        Assert.True(warm >= 60, $"only {warm} of 64 hot rows hit after warming");

        // Hot rows keep coming back, 1 access in 8, between rows seen once: a hot row's reuse
        // distance (512 distinct rows) is twice the capacity, so LRU would miss every one of them;
        // frequency admission keeps the one-hit rows out instead.
        int hotAccesses = 0, hotHits = 0;
        long cold = 1000;
        for (int step = 0; step < 20000; step++)
        {
            if (step % 8 == 0)
            {
                hotAccesses++;
                if (Access(cache, step / 8 % 64)) hotHits++;
            }
            else
            {
                Access(cache, cold++);
            }
        }
        Assert.True(hotHits >= hotAccesses * 9 / 10, $"hot rows hit {hotHits} of {hotAccesses} times among one-hit rows");
        Assert.InRange(cache.Resident, 64, cache.Capacity);
    }

    [Fact]
    public void A_row_read_twice_in_one_request_is_reserved_once_and_aborted_fills_are_not_served()
    {
        using var cache = new HotRowCache(64, RowBytes);
        Assert.True(cache.TryGet(5) == null);
        byte* first = cache.TryAdmit(5);
        Assert.True(first != null);
        Assert.True(cache.TryGet(5) == null, "a filling way was served before its read completed");
        Assert.True(cache.TryAdmit(5) == null, "the same slot was reserved twice");
        cache.AbortFills();
        Assert.True(cache.TryGet(5) == null, "an aborted fill was served");
        Assert.Equal(0, cache.Resident);

        Assert.False(Access(cache, 5));
        Assert.True(Access(cache, 5));
        var fresh = new byte[RowBytes];
        BitConverter.TryWriteBytes(fresh, 5L);
        cache.Update(5, fresh);
        Assert.True(Access(cache, 5));
    }
}
