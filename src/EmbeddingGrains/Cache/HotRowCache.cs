using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Recsys.EmbeddingGrains.Cache;

/// <summary>
/// Fixed-capacity cache of encoded rows for a shard whose budget does not hold all its rows:
/// 4-way set associative over native memory, so a lookup is one hash and at most four compares.
/// A missed row is admitted only if the frequency sketch says it is accessed more often than the
/// way it would evict (TinyLFU), so one scan of cold ids cannot flush the hot set.
/// A row being read from FASTER is "filling": its way is reserved, the read callback copies the row
/// into it, and <see cref="CommitFills"/> makes it visible once every read of the request is done.
/// Single writer: the shard's owner (one grain turn) calls it; it is not thread-safe.
/// </summary>
internal sealed unsafe class HotRowCache : IDisposable
{
    public const int Ways = 4;
    private const long Empty = -1;

    private readonly long[] _tags;           // slot if valid, Empty, or Filling(slot) while a read fills it
    private readonly int _sets;
    private readonly int _rowBytes;
    private readonly FrequencySketch _sketch;
    private readonly List<int> _filling = [];
    private byte* _rows;

    public HotRowCache(long capacityRows, int rowBytes)
    {
        _sets = (int)Math.Max(1, Math.Min(int.MaxValue / Ways, capacityRows / Ways));
        _rowBytes = rowBytes;
        _tags = new long[_sets * Ways];
        _tags.AsSpan().Fill(Empty);
        _rows = (byte*)NativeMemory.AlignedAlloc((nuint)((long)_sets * Ways * rowBytes), 64);
        _sketch = new FrequencySketch((long)_sets * Ways);
    }

    public long Capacity => (long)_sets * Ways;

    public long Resident { get; private set; }

    /// <summary>The cached row of <paramref name="slot"/>, or null. Counts the access for admission.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* TryGet(long slot)
    {
        _sketch.Increment(slot);
        int set = SetOf(slot);
        int first = set * Ways;
        for (int w = 0; w < Ways; w++)
        {
            if (_tags[first + w] == slot) return _rows + (long)(first + w) * _rowBytes;
        }
        return null;
    }

    /// <summary>
    /// Decides whether a missed slot enters the cache; if so reserves a way and returns where the
    /// row's bytes must be written (by the FASTER read callback), else null.
    /// </summary>
    public byte* TryAdmit(long slot)
    {
        int first = SetOf(slot) * Ways;
        int victim = -1;
        int victimFreq = int.MaxValue;
        for (int w = 0; w < Ways; w++)
        {
            long tag = _tags[first + w];
            if (tag == Empty) { victim = first + w; victimFreq = -1; break; }
            if (tag == Filling(slot)) return null; // already being read by this request
            if (tag < Empty) continue;             // another fill in flight: never evict it
            int f = _sketch.Estimate(tag);
            if (f < victimFreq) { victim = first + w; victimFreq = f; }
        }
        if (victim < 0) return null;
        if (victimFreq >= 0 && _sketch.Estimate(slot) <= victimFreq) return null;
        if (_tags[victim] == Empty) Resident++;
        _tags[victim] = Filling(slot);
        _filling.Add(victim);
        return _rows + (long)victim * _rowBytes;
    }

    /// <summary>Every reserved way received its row: make them visible.</summary>
    public void CommitFills()
    {
        foreach (int way in _filling) _tags[way] = Unfill(_tags[way]);
        _filling.Clear();
    }

    /// <summary>Some read failed: the reserved ways hold no valid row.</summary>
    public void AbortFills()
    {
        foreach (int way in _filling)
        {
            _tags[way] = Empty;
            Resident--;
        }
        _filling.Clear();
    }

    /// <summary>An upsert replaced a row: refresh the cached copy if there is one.</summary>
    public void Update(long slot, ReadOnlySpan<byte> row)
    {
        int first = SetOf(slot) * Ways;
        for (int w = 0; w < Ways; w++)
        {
            if (_tags[first + w] == slot) row.CopyTo(new Span<byte>(_rows + (long)(first + w) * _rowBytes, _rowBytes));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int SetOf(long slot) => (int)(((FrequencySketch.Mix(slot) >> 32) * (ulong)_sets) >> 32);

    private static long Filling(long slot) => -2 - slot;
    private static long Unfill(long tag) => -2 - tag;

    public void Dispose()
    {
        if (_rows != null)
        {
            NativeMemory.AlignedFree(_rows);
            _rows = null;
        }
    }
}
