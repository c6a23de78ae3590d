using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Metrics;

namespace Recsys.Router.Serving;

/// <summary>
/// One silo's slices of a batch in one message to its shard host, with the per-shard path as the
/// way out. If the host fails (its silo died or left, placement refused, a shard failed inside) every
/// slice is sent again per shard through <see cref="ShardCallRetry"/>, whose retries and deadline
/// rules then apply unchanged; the host's answer is used whole or not at all, so a batch never
/// mixes a partial answer in. If the host is only slow, the per-shard calls go out as a hedge
/// alongside it and the first whole answer wins: lookups only read. A silo message earns and
/// spends the hedge budget like one shard call, and the per-shard calls it falls back to earn
/// nothing: otherwise a slow cluster's hedges would fund more hedges and double its own load.
/// A bad request (ArgumentException) and the batch giving up are not retried. Each slice names the
/// replica it was sent to: the message counts as outstanding to each of them, and the per-shard calls
/// of a fallback or hedge go to a sibling replica first.
/// </summary>
public static class SiloCallRetry
{
    /// <param name="shards">shards[i] holds request.Shards[i], which is its replica replicas[i].</param>
    /// <returns>Parts[i] answers request.Slices[i]; HostFailed when the host threw and the parts came per shard.</returns>
    public static async Task<(PooledLookupResult[] Parts, bool HostFailed)> LookupAsync(
        IShardHostGrain host, SiloLookupRequest request, ShardReplicas[] shards, int[] replicas, ModelMetrics metrics, CancellationToken giveUp)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(shards);
        ArgumentNullException.ThrowIfNull(replicas);
        ShardCallRetry.EarnHedge();
        metrics.CountSiloCall();
        for (int i = 0; i < shards.Length; i++) shards[i].Begin(replicas[i]);
        Task<SiloLookupResult> first = Tracked(host.Lookup(request), shards, replicas);
        TimeSpan wait = ShardCallRetry.FirstAttemptTimeout;
        while (true)
        {
            try
            {
                SiloLookupResult answer = await first.WaitAsync(wait, giveUp).ConfigureAwait(false);
                return (CheckParts(answer, request), false);
            }
            catch (TimeoutException) when (!first.IsCompleted)
            {
                if (ShardCallRetry.TrySpendHedge()) break;
                wait = TimeSpan.FromTicks(Math.Min(ShardCallRetry.MaxAttemptTimeout.Ticks, wait.Ticks * 2));
            }
            catch (Exception e) when (IsWorthAFallback(e, giveUp))
            {
                metrics.CountSiloFallback();
                return (await PerShardAsync(request, shards, replicas, metrics, giveUp).ConfigureAwait(false), true);
            }
        }

        metrics.CountSiloHedge();
        Task<PooledLookupResult[]> viaHost = PartsOf(first, request);
        Task<PooledLookupResult[]> perShard = PerShardAsync(request, shards, replicas, metrics, giveUp);
        Task<PooledLookupResult[]> done = await Task.WhenAny(viaHost, perShard).WaitAsync(giveUp).ConfigureAwait(false);
        Task<PooledLookupResult[]> other = done == viaHost ? perShard : viaHost;
        if (done.IsCompletedSuccessfully)
        {
            Observe(other);
            return (done.Result, false);
        }
        Observe(done);
        bool hostFailed = done == viaHost;
        if (hostFailed) metrics.CountSiloFallback();
        return (await other.WaitAsync(giveUp).ConfigureAwait(false), hostFailed);
    }

    /// <summary>Every failure of the host path except a bad request and the batch giving up: the per-shard path decides about those itself.</summary>
    private static bool IsWorthAFallback(Exception e, CancellationToken giveUp) => e switch
    {
        ArgumentException => false,
        OperationCanceledException when giveUp.IsCancellationRequested => false,
        AggregateException { InnerExceptions.Count: 1 } a => IsWorthAFallback(a.InnerExceptions[0], giveUp),
        _ => true,
    };

    private static async Task<PooledLookupResult[]> PartsOf(Task<SiloLookupResult> call, SiloLookupRequest request) =>
        CheckParts(await call.ConfigureAwait(false), request);

    private static PooledLookupResult[] CheckParts(SiloLookupResult answer, SiloLookupRequest request)
    {
        if (answer.Parts is null || answer.Parts.Length != request.Slices.Length)
        {
            throw new InvalidOperationException($"shard host answered {answer.Parts?.Length ?? 0} parts for {request.Slices.Length} slices");
        }
        return answer.Parts;
    }

    private static Task<PooledLookupResult[]> PerShardAsync(SiloLookupRequest request, ShardReplicas[] shards, int[] replicas, ModelMetrics metrics, CancellationToken giveUp)
    {
        var calls = new Task<PooledLookupResult>[request.Slices.Length];
        for (int i = 0; i < calls.Length; i++)
        {
            metrics.CountFallbackShardCall();
            // A sibling first: the replica in the message sits on the silo that failed or is slow.
            ulong avoid = replicas[i] < 64 ? 1UL << replicas[i] : 0;
            calls[i] = ShardCallRetry.LookupAsync(shards[i], request.Slices[i], giveUp, earnsHedge: false, avoid);
        }
        return Task.WhenAll(calls);
    }

    /// <summary>The silo message as outstanding to each replica it carries, until it completes; a failure cools them down.</summary>
    private static async Task<SiloLookupResult> Tracked(Task<SiloLookupResult> call, ShardReplicas[] shards, int[] replicas)
    {
        bool failed = false;
        try
        {
            return await call.ConfigureAwait(false);
        }
        catch (Exception e) when (ShardCallRetry.IsTransient(e))
        {
            failed = true;
            throw;
        }
        finally
        {
            for (int i = 0; i < shards.Length; i++) shards[i].End(replicas[i], failed);
        }
    }

    /// <summary>The loser of a race may still fail later; nobody awaits it, so its error is read here.</summary>
    private static void Observe(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
}
