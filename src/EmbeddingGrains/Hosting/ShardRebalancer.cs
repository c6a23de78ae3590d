using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Placement;

namespace Recsys.EmbeddingGrains.Hosting;

/// <summary>
/// Moves this silo's shards to the silo <see cref="ShardRanking"/> now prefers for them, which after
/// an embedding silo joins is the new silo for about 1/N of them. Orleans places a grain only when
/// it activates, so without this a joining silo would get no shard that is already active. Runs on
/// every embedding silo, each for its own shards only: no coordination, no leader. Waits until
/// membership has been quiet for <see cref="EmbeddingShardOptions.RebalanceDelay"/>, then moves at
/// most <see cref="EmbeddingShardOptions.MaxConcurrentMoves"/> shards at a time: a move deactivates
/// the shard (running lookups finish, its store is checkpointed, queued calls are forwarded to the
/// next activation) and then calls it from here, so it activates where this silo's placement picks
/// and has its rows before the front ends' next lookups reach it. Every silo, front ends too, also
/// asks silos missing from Orleans' metadata cache for their roles on each pass
/// (<see cref="EmbeddingSilos.ResolveMissingAsync"/>), or a silo whose metadata fetch failed while
/// it joined would never be seen as a shard host.
/// </summary>
public sealed partial class ShardRebalancer(
    IClusterMembershipService membership,
    EmbeddingSilos embeddingSilos,
    LocalShards shards,
    IGrainFactory grains,
    ILocalSiloDetails local,
    IOptions<EmbeddingShardOptions> options,
    ILogger<ShardRebalancer> logger) : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    /// <summary>A shard's turn to leave waits for its running calls and a checkpoint; past this the move is abandoned (retried next pass).</summary>
    private static readonly TimeSpan LeaveTimeout = TimeSpan.FromMinutes(2);

    /// <summary>Asking and telling roles take one 5 s round each; past this the pass goes on without them.</summary>
    private static readonly TimeSpan RolesTimeout = TimeSpan.FromSeconds(15);

    private readonly EmbeddingShardOptions _options = options.Value;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _changed = new(0);
    private long _changedAt = Environment.TickCount64;
    private long _moved;
    private long _landedElsewhere;
    private int _moving;
    private Task _loop = Task.CompletedTask;
    private string _lastView = "";

    /// <summary>Shards this silo has moved away since it started.</summary>
    public long Moved => Interlocked.Read(ref _moved);

    /// <summary>Moves whose new activation came up on another silo than the preferred one (moved again on a later pass).</summary>
    public long LandedElsewhere => Interlocked.Read(ref _landedElsewhere);

    /// <summary>Moves under way now.</summary>
    public int Moving => Volatile.Read(ref _moving);

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(ShardRebalancer), ServiceLifecycleStage.Active, OnStart, OnStop);

    /// <summary>This silo's loaded shards whose preferred silo is now another active embedding silo, with that silo.</summary>
    public List<(string Key, SiloAddress To)> Misplaced()
    {
        SiloAddress me = local.SiloAddress;
        List<SiloAddress> candidates = embeddingSilos.Filter(ActiveSilos(), me);
        string view = string.Join(", ", candidates.Order());
        if (view != _lastView)
        {
            _lastView = view;
            LogView(logger, me, candidates.Count, view);
        }
        var misplaced = new List<(string, SiloAddress)>();
        // A silo that is not (or no longer) an active member is shutting down: its shards leave with it.
        if (!candidates.Contains(me)) return misplaced;
        foreach ((GrainId grain, LocalShards.Entry entry) in shards.Active)
        {
            SiloAddress? preferred = ShardRanking.ForReplica(grain.ToString(), candidates);
            if (preferred is not null && !preferred.Equals(me)) misplaced.Add((entry.Key, preferred));
        }
        return misplaced;
    }

    private SiloAddress[] ActiveSilos() =>
        membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress).ToArray();

    private Task OnStart(CancellationToken cancellationToken)
    {
        // Silos without shards run the loop too, only to learn the roles the metadata cache missed:
        // front ends place the shards that move, and must see the new silo as a shard host.
        if (!_options.Rebalance) return Task.CompletedTask;
        if (_options.MaxConcurrentMoves < 1) throw new ArgumentOutOfRangeException(nameof(options), _options.MaxConcurrentMoves, $"{nameof(EmbeddingShardOptions.MaxConcurrentMoves)} must be at least 1");
        _loop = Task.Run(() => RunAsync(_stop.Token), CancellationToken.None);
        _ = Task.Run(() => WatchMembershipAsync(_stop.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task OnStop(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync();
        try
        {
            await _loop.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Stopping: a move cut short is retried by nobody; the shard stays where it is or reactivates on its next call.
        }
    }

    /// <summary>
    /// Wakes the loop when the set of active silos changes, and only then: the snapshots Orleans
    /// repeats without a change (<see cref="ActiveSiloChanges"/>) used to reset the quiet period on
    /// every table refresh, and a silo whose refreshes came a little under
    /// <see cref="EmbeddingShardOptions.RebalanceDelay"/> apart never made a single pass.
    /// </summary>
    private async Task WatchMembershipAsync(CancellationToken stop)
    {
        var changes = new ActiveSiloChanges();
        try
        {
            await foreach (ClusterMembershipSnapshot snapshot in membership.MembershipUpdates.WithCancellation(stop))
            {
                if (!changes.Changed(snapshot)) continue;
                LogMembershipChanged(logger, local.SiloAddress, snapshot.Version.Value, ActiveSiloChanges.Active(snapshot).Length);
                Volatile.Write(ref _changedAt, Environment.TickCount64);
                _changed.Release();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Silo stopping.
        }
    }

    private async Task RunAsync(CancellationToken stop)
    {
        bool soon = false;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await _changed.WaitAsync(soon ? _options.RebalanceDelay : _options.RebalanceInterval, stop);
                bool retrying = soon;
                soon = false;
                await SettleAsync(stop);
                while (_changed.CurrentCount > 0) await _changed.WaitAsync(stop);
                SiloAddress[] active = ActiveSilos();
                LogPassStart(logger, local.SiloAddress, membership.CurrentSnapshot.Version.Value, active.Length, embeddingSilos.Filter(active, local.SiloAddress).Count);
                embeddingSilos.Forget(membership.CurrentSnapshot.Members.Keys.ToHashSet());
                try
                {
                    // Bounded as a whole and off this loop's thread: a pass once never came back from asking
                    // a just-joined silo (cause not found), and the loop must outlive that.
                    await Task.Run(() => ExchangeRolesAsync(active), stop).WaitAsync(RolesTimeout, stop);
                }
                catch (TimeoutException)
                {
                    LogRolesTimedOut(logger, local.SiloAddress);
                }
                if (!_options.HostsShards) continue;
                List<(string Key, SiloAddress To)> misplaced = Misplaced();
                if (misplaced.Count == 0) continue;
                LogPass(logger, local.SiloAddress, misplaced.Count, shards.Count);
                long missedBefore = LandedElsewhere;
                await Parallel.ForEachAsync(misplaced, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxConcurrentMoves, CancellationToken = stop },
                    (shard, ct) => new ValueTask(MoveAsync(shard.Key, shard.To, ct)));
                // The first moves after a join sometimes reactivate on this silo again (seen under load, cause
                // not found). The next pass moves them: after one quiet period rather than a whole interval,
                // and only once in a row, so a shard that keeps coming back is not churned every 5 s.
                soon = !retrying && LandedElsewhere > missedBefore;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The loop must outlive any one failed pass: the next pass retries.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogPassFailed(logger, e);
            }
        }
    }

    /// <summary>
    /// Lets membership settle: a burst of changes (several silos starting) gives one pass, and the
    /// front ends learn a new silo's roles before the first shard moves there. Bounded by
    /// <see cref="EmbeddingShardOptions.RebalanceInterval"/>, so a cluster whose membership keeps
    /// changing still gets a pass now and then instead of none.
    /// </summary>
    private async Task SettleAsync(CancellationToken stop)
    {
        long delay = (long)_options.RebalanceDelay.TotalMilliseconds;
        long giveUpAt = Environment.TickCount64 + (long)_options.RebalanceInterval.TotalMilliseconds;
        long quietFor;
        while ((quietFor = Environment.TickCount64 - Volatile.Read(ref _changedAt)) < delay && Environment.TickCount64 < giveUpAt)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(delay - quietFor, Math.Max(1, giveUpAt - Environment.TickCount64))), stop);
        }
    }

    private async Task ExchangeRolesAsync(SiloAddress[] active)
    {
        List<SiloAddress> unknown = embeddingSilos.Unknown(active, local.SiloAddress);
        if (unknown.Count > 0)
        {
            int answered = await embeddingSilos.ResolveMissingAsync(unknown, local.SiloAddress, grains);
            LogResolved(logger, local.SiloAddress, string.Join(", ", unknown), answered);
        }
        List<SiloAddress> untold = await embeddingSilos.AnnounceAsync(active, local.SiloAddress, _options.Roles, grains);
        if (untold.Count > 0) LogUntold(logger, local.SiloAddress, string.Join(", ", untold));
    }

    private async Task MoveAsync(string key, SiloAddress to, CancellationToken stop)
    {
        SiloAddress me = local.SiloAddress;
        LocalShards.Entry? entry = shards.Active.FirstOrDefault(kv => kv.Value.Key == key).Value;
        if (entry is null) return; // left meanwhile (deactivated, or moved by a call that placed it elsewhere)
        Interlocked.Increment(ref _moving);
        long started = Environment.TickCount64;
        try
        {
            IEmbeddingShardGrain grain = grains.GetGrain<IEmbeddingShardGrain>(key);
            if (!await grain.Rebalance(me)) return;
            await entry.Left.WaitAsync(LeaveTimeout, stop);
            // Activate it now, placed by this silo's view, rather than on a front end's next lookup.
            ShardStatus status = await grain.GetStatus();
            Interlocked.Increment(ref _moved);
            if (!to.Equals(status.SiloAddress)) Interlocked.Increment(ref _landedElsewhere);
            LogMoved(logger, key, me, status.Silo, to, Environment.TickCount64 - started);
        }
        catch (TimeoutException e)
        {
            LogMoveFailed(logger, key, e);
        }
        catch (OrleansException e)
        {
            LogMoveFailed(logger, key, e);
        }
        finally
        {
            Interlocked.Decrement(ref _moving);
        }
    }

    public void Dispose()
    {
        _stop.Dispose();
        _changed.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Rebalance pass on {Silo}: membership version {Version}, {Active} active silos, {Embedding} embedding")]
    private static partial void LogPassStart(ILogger logger, SiloAddress silo, long version, int active, int embedding);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Rebalance on {Silo}: active silos changed (membership version {Version}, {Active} active)")]
    private static partial void LogMembershipChanged(ILogger logger, SiloAddress silo, long version, int active);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rebalance on {Silo}: roles of {Unknown} missing from the metadata cache; {Answered} answered when asked")]
    private static partial void LogResolved(ILogger logger, SiloAddress silo, string unknown, int answered);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rebalance on {Silo}: exchanging roles with other silos did not finish in 15 s; the pass goes on without it")]
    private static partial void LogRolesTimedOut(ILogger logger, SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rebalance on {Silo}: could not tell {Silos} this silo's roles yet; next pass tries again")]
    private static partial void LogUntold(ILogger logger, SiloAddress silo, string silos);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rebalance on {Silo}: {Count} embedding silos now: {Silos}")]
    private static partial void LogView(ILogger logger, SiloAddress silo, int count, string silos);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rebalance on {Silo}: {Misplaced} of {Local} shards are preferred elsewhere; moving them")]
    private static partial void LogPass(ILogger logger, SiloAddress silo, int misplaced, int local);

    [LoggerMessage(Level = LogLevel.Information, Message = "Shard {Shard} moved from {From} to {Actual} (preferred {Preferred}) in {Ms} ms")]
    private static partial void LogMoved(ILogger logger, string shard, SiloAddress from, string actual, SiloAddress preferred, long ms);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shard {Shard}: move failed; the next pass retries")]
    private static partial void LogMoveFailed(ILogger logger, string shard, Exception error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rebalance pass failed; the next pass retries")]
    private static partial void LogPassFailed(ILogger logger, Exception error);
}
