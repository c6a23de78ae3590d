using System.Collections.Concurrent;

namespace Recsys.EmbeddingGrains.Serving;

/// <summary>
/// The fully resident shards active on this silo, by grain key, for a front end co-hosted in the
/// same silo: it pools their rows in place instead of sending a grain call per shard (one message,
/// one scheduler turn and one continuation each, which is most of a resident lookup's cost).
/// Only resident shards are listed: their lookups only read the flat array, so concurrent readers
/// are safe; a cached shard's lookup writes its cache and stays behind the grain's turn.
/// </summary>
public sealed class LocalResidentShards
{
    private readonly ConcurrentDictionary<string, ResidentShardReader> _byKey = new(StringComparer.Ordinal);

    /// <summary>The reader of shard <paramref name="key"/> if it is resident and active on this silo.</summary>
    public ResidentShardReader? Find(string key) => _byKey.TryGetValue(key, out ResidentShardReader? reader) ? reader : null;

    internal void Add(string key, ResidentShardReader reader) => _byKey[key] = reader;

    internal void Remove(string key, ResidentShardReader reader) => _byKey.TryRemove(new KeyValuePair<string, ResidentShardReader>(key, reader));
}

/// <summary>
/// Reads one resident shard outside its grain's turn. The grain keeps its single-writer guarantee
/// through this gate: readers share it, an upsert takes it alone (so no lookup sees a half-written
/// row), and deactivation closes it and waits for the readers before the shard's memory is freed.
/// A counter and a flag rather than ReaderWriterLockSlim: nothing to dispose while a front end may
/// still hold the reader, and a read costs two interlocked operations.
/// </summary>
public sealed class ResidentShardReader
{
    private readonly EmbeddingShard _shard;
    private readonly Lock _writers = new();
    private int _readers;
    private int _writing;
    private bool _closed;
    private long _reads;

    internal ResidentShardReader(EmbeddingShard shard)
    {
        if (!shard.IsResident) throw new ArgumentException("only a fully resident shard may be read outside its grain's turn", nameof(shard));
        _shard = shard;
    }

    public int Dim => _shard.Dim;

    /// <summary>
    /// Pools bags into <paramref name="output"/> (Bags x Dim partial sums, as the grain's Lookup
    /// answers). False when the shard is closing: the caller sends a grain call instead.
    /// </summary>
    /// <exception cref="ArgumentException">An id out of range or not owned by this shard, or malformed offsets.</exception>
    public bool TryLookup(long[] ids, int[] offsets, float[]? weights, float[] output)
    {
        EnterRead();
        try
        {
            if (Volatile.Read(ref _closed)) return false;
            // A resident shard never reads FASTER, so the lookup has completed when it returns.
            ValueTask pooled = _shard.LookupAsync(ids, offsets, weights, output);
            if (!pooled.IsCompletedSuccessfully) throw new InvalidOperationException("a resident shard's lookup did not complete synchronously");
            Interlocked.Increment(ref _reads);
            return true;
        }
        finally
        {
            Interlocked.Decrement(ref _readers);
        }
    }

    private void EnterRead()
    {
        var spin = new SpinWait();
        while (true)
        {
            // Both sides publish first and look second (full fences), so a reader and a writer never both pass.
            Interlocked.Increment(ref _readers);
            if (Volatile.Read(ref _writing) == 0) return;
            Interlocked.Decrement(ref _readers);
            while (Volatile.Read(ref _writing) != 0) spin.SpinOnce();
        }
    }

    /// <summary>Runs a write (upsert) with no reader inside.</summary>
    internal void Exclusive(Action write)
    {
        lock (_writers)
        {
            Interlocked.Exchange(ref _writing, 1);
            try
            {
                var spin = new SpinWait();
                while (Volatile.Read(ref _readers) != 0) spin.SpinOnce();
                write();
            }
            finally
            {
                Volatile.Write(ref _writing, 0);
            }
        }
    }

    /// <summary>Reads since the last call: the grain stays active while it is read this way (no grain calls reach it).</summary>
    internal long TakeReads() => Interlocked.Exchange(ref _reads, 0);

    /// <summary>No new reads; returns once the reads in flight are done.</summary>
    internal void Close() => Exclusive(() => Volatile.Write(ref _closed, true));
}
