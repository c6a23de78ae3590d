using System.Collections.Concurrent;

namespace Recsys.EmbeddingGrains.Hosting;

/// <summary>
/// The shard activations of this silo that finished loading (one per silo): what the rebalancer
/// looks through, and how it learns that a shard it asked to move has left.
/// </summary>
public sealed class LocalShards
{
    private readonly ConcurrentDictionary<GrainId, Entry> _active = new();

    public sealed class Entry(string key)
    {
        private readonly TaskCompletionSource _left = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public string Key { get; } = key;
        /// <summary>Completes when this activation has deactivated (its store checkpointed and closed).</summary>
        public Task Left => _left.Task;
        internal void MarkLeft() => _left.TrySetResult();
    }

    public int Count => _active.Count;

    public IEnumerable<KeyValuePair<GrainId, Entry>> Active => _active;

    internal void Add(GrainId grain, string key) => _active[grain] = new Entry(key);

    internal void Remove(GrainId grain)
    {
        if (_active.TryRemove(grain, out Entry? entry)) entry.MarkLeft();
    }
}
