using System.Runtime.CompilerServices;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Metrics;

namespace Recsys.Router.Serving;

/// <summary>
/// The replicas of one shard as this front end sees them: their grain references, the calls it has
/// outstanding to each, when each last failed, and the calls sent to each (/metrics, replicated
/// tables only). With one replica it is a plain shard reference: no counting at all.
/// </summary>
public sealed class ShardReplicas
{
    /// <summary>How long a replica whose call failed is passed over while a sibling is healthy.</summary>
    public static readonly TimeSpan FailureCoolDown = TimeSpan.FromSeconds(2);

    private readonly IEmbeddingShardGrain[] _grains;
    private readonly string[] _keys;
    private readonly int[] _outstanding;
    private readonly long[] _coolingUntil;
    private readonly StrongBox<long>[] _calls;
    private readonly ModelMetrics? _metrics;

    public ShardReplicas(IGrainFactory grains, string model, string version, TableSpec table, int shard, ModelMetrics? metrics = null)
        : this(Keys(model, version, table, shard).Select(k => Grain(grains, k)).ToArray(), Keys(model, version, table, shard), table.Name, shard, metrics)
    {
    }

    /// <param name="grains">grains[r] answers for replica r (any IEmbeddingShardGrain: the retry rules do not care how it is reached).</param>
    public ShardReplicas(IEmbeddingShardGrain[] grains, string[] keys, string table, int shard, ModelMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(table);
        int count = grains.Length;
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(grains), count, $"table '{table}' shard {shard} has no replica; at least 1");
        if (keys.Length != count) throw new ArgumentException($"{keys.Length} keys for {count} replicas", nameof(keys));
        Table = table;
        Shard = shard;
        _keys = keys;
        _grains = grains;
        _outstanding = new int[count];
        _coolingUntil = new long[count];
        _metrics = count > 1 ? metrics : null;
        _calls = new StrongBox<long>[count];
        for (int r = 0; r < count; r++) _calls[r] = metrics is not null && count > 1 ? metrics.ReplicaCalls(table, shard, r) : new StrongBox<long>();
    }

    private static string[] Keys(string model, string version, TableSpec table, int shard)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Replicas < 1) throw new ArgumentOutOfRangeException(nameof(table), table.Replicas, $"table '{table.Name}' has {table.Replicas} replicas; at least 1");
        return Enumerable.Range(0, table.Replicas).Select(r => ShardKey.Format(model, version, table.Name, shard, r)).ToArray();
    }

    private static IEmbeddingShardGrain Grain(IGrainFactory grains, string key)
    {
        ArgumentNullException.ThrowIfNull(grains);
        return grains.GetGrain<IEmbeddingShardGrain>(key);
    }

    public string Table { get; }
    public int Shard { get; }
    public int Count => _grains.Length;

    public IEmbeddingShardGrain this[int replica] => _grains[replica];

    public string Key(int replica) => _keys[replica];

    public IReadOnlyList<IEmbeddingShardGrain> All => _grains;

    /// <summary>Calls outstanding to <paramref name="replica"/> now.</summary>
    public int Outstanding(int replica) => Volatile.Read(ref _outstanding[replica]);

    /// <summary>Calls sent to <paramref name="replica"/>: for a replicated table, the model's /metrics counter (all versions).</summary>
    public long Calls(int replica) => Interlocked.Read(ref _calls[replica].Value);

    /// <summary>The replica for the next call (see <see cref="ReplicaChoice"/>); -1 only if every replica is in <paramref name="excluded"/>.</summary>
    public int Choose(ulong excluded = 0) =>
        Count == 1 ? (excluded & 1) == 0 ? 0 : -1 : ReplicaChoice.Pick(_outstanding, _coolingUntil, Environment.TickCount64, excluded);

    /// <summary>A call to <paramref name="replica"/> that counts as outstanding until it completes.</summary>
    public Task<PooledLookupResult> LookupAsync(int replica, PooledLookupRequest request) =>
        Count == 1 ? _grains[0].Lookup(request) : TrackedAsync(replica, request);

    /// <summary>Counts a call that goes some other way (a silo message carrying this slice) as outstanding to <paramref name="replica"/>.</summary>
    public void Begin(int replica)
    {
        if (Count == 1) return;
        Interlocked.Increment(ref _outstanding[replica]);
        Interlocked.Increment(ref _calls[replica].Value);
    }

    /// <summary>Ends what <see cref="Begin"/> started; a failure starts the replica's cool-down.</summary>
    public void End(int replica, bool failed)
    {
        if (Count == 1) return;
        Interlocked.Decrement(ref _outstanding[replica]);
        if (failed) Volatile.Write(ref _coolingUntil[replica], Environment.TickCount64 + (long)FailureCoolDown.TotalMilliseconds);
    }

    /// <summary>A call went to a sibling because another replica failed or was slow.</summary>
    public void CountFailover() => _metrics?.CountReplicaFailover();

    private async Task<PooledLookupResult> TrackedAsync(int replica, PooledLookupRequest request)
    {
        Begin(replica);
        bool failed = false;
        try
        {
            return await _grains[replica].Lookup(request).ConfigureAwait(false);
        }
        catch (Exception e) when (ShardCallRetry.IsTransient(e))
        {
            // Where the replica lives failed, not the request: pass it over for a while.
            failed = true;
            throw;
        }
        finally
        {
            End(replica, failed);
        }
    }
}
