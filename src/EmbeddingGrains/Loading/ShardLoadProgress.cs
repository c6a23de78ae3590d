using System.Collections.Concurrent;

namespace Recsys.EmbeddingGrains.Loading;

/// <summary>
/// Rows loaded so far per shard on this silo (one singleton per silo), so the serve command can
/// print load progress while shards fill from the model repository.
/// </summary>
public sealed class ShardLoadProgress
{
    private readonly ConcurrentDictionary<string, Entry> _shards = new(StringComparer.Ordinal);

    public sealed class Entry(long total)
    {
        private long _loaded;
        public long Total { get; } = total;
        public long Loaded => Volatile.Read(ref _loaded);
        public bool Done => Loaded >= Total;
        internal void Set(long loaded) => Volatile.Write(ref _loaded, loaded);
    }

    public Entry Start(string shardKey, long total)
    {
        var entry = new Entry(total);
        _shards[shardKey] = entry;
        return entry;
    }

    public IReadOnlyDictionary<string, Entry> Shards => _shards;

    /// <summary>Rows loaded and total over every shard this silo has loaded or is loading.</summary>
    public (long Loaded, long Total) Totals()
    {
        long loaded = 0, total = 0;
        foreach (Entry e in _shards.Values)
        {
            loaded += e.Loaded;
            total += e.Total;
        }
        return (loaded, total);
    }
}
