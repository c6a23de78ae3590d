using System.Buffers;
using System.Runtime.ExceptionServices;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Serving;
using Recsys.Router.Repository;

namespace Recsys.Router.Serving;

/// <summary>
/// The lookups of a batch's tables whose shards are all resident on this silo, pooled in place
/// (<see cref="ResidentShardReader"/>) instead of one grain call per shard. A grain call to a
/// co-hosted shard copies nothing ([Immutable] messages) but costs a message, a turn on the
/// shard's activation and a continuation back, each a thread hop; on a loaded 2-core machine
/// those hops, not the pooling, were most of the lookup stage. Here the tables are work items
/// taken in turn by one thread-pool helper and by the engine's own thread once its bottom MLP is
/// done, so whoever is running does the work and nothing waits on a wake-up. A shard that starts
/// closing (deactivation) meanwhile is asked through its grain instead. Any resident replica of a
/// shard will do: replicas hold the same rows.
/// </summary>
public sealed class LocalPooling
{
    private readonly ServedModel _model;
    private readonly LookupBatch _batch;
    private readonly int[] _tables;
    private readonly ResidentShardReader[][] _readers;
    private readonly PooledLookupRequest?[][] _requests;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _next = -1;
    private int _remaining;
    private Exception? _error;

    private LocalPooling(ServedModel model, LookupBatch batch, int[] tables, ResidentShardReader[][] readers, bool[] isLocal)
    {
        _model = model;
        _batch = batch;
        _tables = tables;
        _readers = readers;
        IsLocal = isLocal;
        _remaining = tables.Length;
        int count = model.Spec.Tables.Length;
        _requests = new PooledLookupRequest?[count][];
        Partials = new PooledLookupResult?[count][];
    }

    /// <summary>IsLocal[t]: table t is pooled here; the fan-out sends no call for it.</summary>
    public bool[] IsLocal { get; }

    /// <summary>Partials[t][s] as a shard grain would answer them, for the local tables (rented buffers: see <see cref="ReturnBuffers"/>).</summary>
    public PooledLookupResult?[][] Partials { get; }

    /// <summary>The local part of <paramref name="batch"/>, or null when no table has all its shards resident here.</summary>
    public static LocalPooling? Claim(ServedModel model, LookupBatch batch)
    {
        TableSpec[] specs = model.Spec.Tables;
        bool[]? isLocal = null;
        ResidentShardReader[][]? readers = null;
        int local = 0;
        for (int t = 0; t < specs.Length; t++)
        {
            var shardReaders = new ResidentShardReader[specs[t].Shards];
            bool all = true;
            for (int s = 0; s < shardReaders.Length && all; s++)
            {
                ResidentShardReader? reader = model.LocalShard(t, s);
                if (reader is null) all = false;
                else shardReaders[s] = reader;
            }
            if (!all) continue;
            isLocal ??= new bool[specs.Length];
            readers ??= new ResidentShardReader[specs.Length][];
            isLocal[t] = true;
            readers[t] = shardReaders;
            local++;
        }
        if (isLocal is null) return null;
        int[] tables = new int[local];
        for (int t = 0, i = 0; t < specs.Length; t++)
        {
            if (isLocal[t]) tables[i++] = t;
        }
        return new LocalPooling(model, batch, tables, readers!, isLocal);
    }

    /// <summary>Queues the helper that starts on the tables while the caller runs the bottom MLP.</summary>
    public void Start() => ThreadPool.UnsafeQueueUserWorkItem(static pooling => pooling.Drain(), this, preferLocal: false);

    /// <summary>Pools tables not taken yet on the calling thread, then waits for the helper's last one and asks the grains of any shard that was closing.</summary>
    public async Task<PooledLookupResult?[][]> FinishAsync(CancellationToken giveUp)
    {
        Drain();
        await _done.Task.ConfigureAwait(false);
        if (_error is not null) ExceptionDispatchInfo.Throw(_error);
        foreach (int t in _tables)
        {
            for (int s = 0; s < _requests[t].Length; s++)
            {
                if (_requests[t][s] is { } request && Partials[t][s] is null)
                {
                    Partials[t][s] = await ShardCallRetry.LookupAsync(_model.Replicas(t, s), request, giveUp).ConfigureAwait(false);
                }
            }
        }
        return Partials;
    }

    /// <summary>Gives the pooled buffers back once the partials are merged.</summary>
    public void ReturnBuffers()
    {
        foreach (int t in _tables)
        {
            for (int s = 0; s < Partials[t].Length; s++)
            {
                // Only buffers pooled here: a grain's answer (closing shard) owns its array.
                if (Partials[t][s] is { Silo: null } local) ArrayPool<float>.Shared.Return(local.Pooled);
                Partials[t][s] = null;
            }
        }
    }

    private void Drain()
    {
        int i;
        while ((i = Interlocked.Increment(ref _next)) < _tables.Length)
        {
            try
            {
                PoolTable(_tables[i]);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
            if (Interlocked.Decrement(ref _remaining) == 0) _done.TrySetResult();
        }
    }

    private void PoolTable(int t)
    {
        TableSpec spec = _model.Spec.Tables[t];
        PooledLookupRequest?[] requests = ShardSplitter.Split(_batch.Tables[t], spec.Rows, spec.Shards);
        var partials = new PooledLookupResult?[requests.Length];
        int bags = _batch.Tables[t].Bags;
        for (int s = 0; s < requests.Length; s++)
        {
            if (requests[s] is not { } request) continue;
            float[] pooled = ArrayPool<float>.Shared.Rent(Math.Max(1, bags * spec.Dim));
            if (_readers[t][s].TryLookup(request.Ids, request.Offsets, request.Weights, pooled))
            {
                partials[s] = new PooledLookupResult { Bags = bags, Dim = spec.Dim, Pooled = pooled };
                _model.Metrics.CountLocalShardRead();
            }
            else
            {
                ArrayPool<float>.Shared.Return(pooled);
            }
        }
        _requests[t] = requests;
        Partials[t] = partials;
    }
}
