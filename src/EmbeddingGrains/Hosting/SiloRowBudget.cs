using Microsoft.Extensions.Options;

namespace Recsys.EmbeddingGrains.Hosting;

/// <summary>The silo's row memory, handed to shards as they activate and returned when they deactivate.</summary>
public sealed class SiloRowBudget(IOptions<EmbeddingShardOptions> options)
{
    private readonly object _lock = new();
    private readonly EmbeddingShardOptions _options = options.Value;
    private long _granted;

    public long Granted
    {
        get { lock (_lock) return _granted; }
    }

    /// <summary>Grants up to <paramref name="wantedBytes"/> (all of the shard's rows) within the silo budget and the caps.</summary>
    public long Acquire(string model, string table, long wantedBytes)
    {
        long cap = long.MaxValue;
        if (_options.ShardGrantCaps.TryGetValue($"{model}/{table}", out long tableCap)) cap = tableCap;
        else if (_options.ShardGrantCaps.TryGetValue(model, out long modelCap)) cap = modelCap;
        lock (_lock)
        {
            long left = Math.Max(0, _options.MemoryBudgetBytes - _granted);
            long grant = Math.Min(Math.Min(wantedBytes, cap), Math.Max(left, _options.MinShardGrantBytes));
            _granted += grant;
            return grant;
        }
    }

    public void Release(long bytes)
    {
        lock (_lock) _granted = Math.Max(0, _granted - bytes);
    }
}
