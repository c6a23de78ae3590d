using System.Numerics;
using System.Runtime.CompilerServices;

namespace Recsys.EmbeddingGrains.Cache;

/// <summary>
/// A count-min sketch of recent access frequency (TinyLFU's admission filter): four saturating
/// byte counters per key in one table of 8 counters per cached row (wide enough that keys seen once
/// estimate ~1), all halved every 10 x cache-capacity increments so old popularity fades.
/// Memory is 8 bytes per cached row, independent of the shard's size.
/// </summary>
internal sealed class FrequencySketch
{
    private const int Depth = 4;
    private readonly byte[] _counters;
    private readonly int _mask;
    private readonly int _resetAfter;
    private int _increments;

    public FrequencySketch(long cachedEntries)
    {
        int width = (int)BitOperations.RoundUpToPowerOf2((ulong)Math.Clamp(cachedEntries * 8, 64, 1 << 28));
        _counters = new byte[width];
        _mask = width - 1;
        _resetAfter = (int)Math.Min(int.MaxValue / 2, Math.Max(64, cachedEntries * 10));
    }

    /// <summary>Counts one access and returns the new estimate.</summary>
    public int Increment(long key)
    {
        ulong h = Mix(key);
        int min = int.MaxValue;
        for (int i = 0; i < Depth; i++)
        {
            ref byte c = ref _counters[Index(h, i)];
            if (c < byte.MaxValue) c++;
            min = Math.Min(min, c);
        }
        if (++_increments >= _resetAfter) Age();
        return min;
    }

    public int Estimate(long key)
    {
        ulong h = Mix(key);
        int min = int.MaxValue;
        for (int i = 0; i < Depth; i++) min = Math.Min(min, _counters[Index(h, i)]);
        return min;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Index(ulong h, int i) => (int)((h >> (i * 16)) ^ (h >> (32 + i * 8))) & _mask;

    /// <summary>SplitMix64 finalizer: slots are dense, so they need real mixing before indexing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Mix(long key)
    {
        ulong z = (ulong)key + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private void Age()
    {
        for (int i = 0; i < _counters.Length; i++) _counters[i] >>= 1;
        _increments /= 2;
    }
}
