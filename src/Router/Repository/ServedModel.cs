using System.Collections.Concurrent;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Serving;
using Recsys.Router.Batching;
using Recsys.Router.Metrics;
using Recsys.Router.Serving;

namespace Recsys.Router.Repository;

/// <summary>
/// One loaded version of a DLRM: its dense weights, references to its shard grains, where those
/// shards were last seen (<see cref="Locations"/>, for one lookup message per silo) and its batcher.
/// Requests hold a lease while they run; a retired version unloads once the last lease ends, so a
/// version switch never fails a request that already started.
/// </summary>
public sealed class ServedModel
{
    private readonly ShardReplicas[][] _shards;
    private readonly LocalResidentShards? _localShards;
    private readonly IGrainFactory _grains;
    private readonly ConcurrentDictionary<SiloAddress, IShardHostGrain> _hosts = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Starts at 1: the registry's own reference, dropped by Retire.
    private int _leases = 1;

    public ServedModel(string name, string version, DlrmSpec spec, DlrmDense dense, IGrainFactory grains, ModelMetrics metrics, BatchingOptions batching, LocalResidentShards? localShards = null)
    {
        _localShards = localShards;
        Name = name;
        Version = version;
        Spec = spec;
        Dense = dense;
        Metrics = metrics;
        _grains = grains;
        Locations = new ShardLocations(spec.Tables.Select(t => t.Shards).ToArray(), spec.Tables.Select(t => t.Replicas).ToArray());
        _shards = spec.Tables.Select(t => Enumerable.Range(0, t.Shards).Select(s => new ShardReplicas(grains, name, version, t, s, metrics)).ToArray()).ToArray();
        Batcher = new ModelBatcher(this, batching);
    }

    public string Name { get; }
    public string Version { get; }
    public DlrmSpec Spec { get; }
    public DlrmDense Dense { get; }
    public ModelMetrics Metrics { get; }
    public ModelBatcher Batcher { get; }

    /// <summary>Completes when the version is retired and its last request has finished.</summary>
    public Task Drained => _drained.Task;

    /// <summary>
    /// Send a batch's slices as one message per silo (<see cref="LookupFanOut"/>). Off by default:
    /// on the loopback cluster the per-shard path served more at saturation (two rounds)
    /// (bench/RESULTS-cluster.md); the RECSYS_LOOKUP_PER_SILO=1 environment variable turns it on.
    /// </summary>
    public bool LookupPerSilo { get; set; } = Environment.GetEnvironmentVariable("RECSYS_LOOKUP_PER_SILO") == "1";

    /// <summary>Shard -> silo, from the shards' own answers and status reports.</summary>
    public ShardLocations Locations { get; }

    /// <summary>Replica 0 of a shard (the shard itself when its table has no replicas).</summary>
    public IEmbeddingShardGrain Shard(int table, int shard) => _shards[table][shard][0];

    /// <summary>Every replica of a shard, with this front end's outstanding calls to each.</summary>
    public ShardReplicas Replicas(int table, int shard) => _shards[table][shard];

    /// <summary>
    /// Pool resident shards active on this silo in place (<see cref="LocalShard"/>) instead of calling
    /// their grains. On by default; RECSYS_LOCAL_SHARD_READS=0 turns it off (benchmarks compare both).
    /// </summary>
    public bool ReadLocalShardsInPlace { get; set; } = Environment.GetEnvironmentVariable("RECSYS_LOCAL_SHARD_READS") != "0";

    /// <summary>The in-place reader of a shard when one of its replicas is resident and active on this silo, else null (call its grain).</summary>
    public ResidentShardReader? LocalShard(int table, int shard)
    {
        if (!ReadLocalShardsInPlace || _localShards is not { } local) return null;
        ShardReplicas replicas = _shards[table][shard];
        for (int r = 0; r < replicas.Count; r++)
        {
            if (local.Find(replicas.Key(r)) is { } reader) return reader;
        }
        return null;
    }

    /// <summary>The lookup entry of <paramref name="silo"/>: takes all of a batch's slices for that silo in one message.</summary>
    public IShardHostGrain Host(SiloAddress silo) =>
        _hosts.GetOrAdd(silo, static (s, grains) => grains.GetGrain<IShardHostGrain>(ShardHostKey.Format(s)), _grains);

    /// <summary>Every shard replica's grain.</summary>
    public IEnumerable<IEmbeddingShardGrain> AllShards => _shards.SelectMany(s => s).SelectMany(r => r.All);

    private IEnumerable<(int Table, int Shard, int Replica)> ShardIndices =>
        _shards.SelectMany((shards, t) => shards.SelectMany((replicas, s) => Enumerable.Range(0, replicas.Count).Select(r => (t, s, r))));

    public long TotalRows => Spec.Tables.Sum(t => t.Rows);

    /// <summary>False once the version is retired and drained; the caller then asks the registry again.</summary>
    public bool TryAcquire()
    {
        int current = Volatile.Read(ref _leases);
        while (current > 0)
        {
            int seen = Interlocked.CompareExchange(ref _leases, current + 1, current);
            if (seen == current) return true;
            current = seen;
        }
        return false;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0) _ = UnloadAsync();
    }

    /// <summary>Drops the registry's reference; unloading follows the last in-flight request.</summary>
    public void Retire() => Release();

    /// <summary>
    /// Activates every shard (each loads or recovers its rows) and reports rows loaded so far. A few
    /// at a time, so each activation finishes within the call timeout on a busy machine; a call
    /// that still times out is repeated (the activation keeps going on its silo meanwhile).
    /// </summary>
    public async Task WarmUpAsync(IProgress<(long Loaded, long Total)>? progress, CancellationToken cancel = default)
    {
        // Every replica loads its rows: progress counts them all.
        long total = Spec.Tables.Sum(t => t.Rows * t.Replicas), loaded = 0;
        progress?.Report((0, total));
        using var slots = new SemaphoreSlim(WarmUpConcurrency);
        Task[] all = ShardIndices.Select(async ts =>
        {
            await slots.WaitAsync(cancel).ConfigureAwait(false);
            try
            {
                ShardStatus status = await StatusWithRetryAsync(Replicas(ts.Table, ts.Shard)[ts.Replica], cancel).ConfigureAwait(false);
                Locations.Record(ts.Table, ts.Shard, ts.Replica, status.SiloAddress);
                progress?.Report((Interlocked.Add(ref loaded, status.Rows), total));
            }
            finally
            {
                slots.Release();
            }
        }).ToArray();
        await Task.WhenAll(all).ConfigureAwait(false);
    }

    private const int WarmUpConcurrency = 4;
    private const int WarmUpAttempts = 5;

    private static async Task<ShardStatus> StatusWithRetryAsync(IEmbeddingShardGrain shard, CancellationToken cancel)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await shard.GetStatus().WaitAsync(cancel).ConfigureAwait(false);
            }
            catch (TimeoutException) when (attempt < WarmUpAttempts)
            {
                // Loading a big shard can outlast one call timeout; ask again.
            }
        }
    }

    public async Task<ShardCacheStats> CacheStatsAsync()
    {
        (int Table, int Shard, int Replica)[] indices = ShardIndices.ToArray();
        ShardStatus[] all = await Task.WhenAll(indices.Select(ts => Replicas(ts.Table, ts.Shard)[ts.Replica].GetStatus())).ConfigureAwait(false);
        // Every scrape also refreshes the shard -> silo map.
        for (int i = 0; i < all.Length; i++) Locations.Record(indices[i].Table, indices[i].Shard, indices[i].Replica, all[i].SiloAddress);
        return new ShardCacheStats(Name, Version, all.Length, all.Sum(s => s.Rows), all.Sum(s => s.ResidentRows), all.Sum(s => s.CacheHits), all.Sum(s => s.CacheMisses));
    }

    private async Task UnloadAsync()
    {
        try
        {
            await Batcher.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _drained.TrySetResult();
        }
    }
}
