using Recsys.EmbeddingGrains.Contracts;

namespace Recsys.Router.Serving;

/// <summary>
/// One shard lookup that survives its silo going away. A call that fails because the silo died,
/// left or refused the message is sent again; a call with no answer after
/// <see cref="FirstAttemptTimeout"/> (doubling per attempt) gets a second one alongside it (a
/// hedge: lookups only read, so whichever whole answer comes first is right). That covers
/// messages stranded on a silo that is shutting down or was killed and not yet declared dead.
/// With replicas (<see cref="ShardReplicas"/>) the new attempt goes to a sibling replica, on another
/// silo, at once: after a failure without backoff, after a timeout without spending the hedge
/// budget (once per lookup), so a lost silo costs a request one retry, not a failover. Without a
/// sibling (one replica, or all failed in this round) the same grain is asked again after a short
/// backoff: the reference is location-transparent, so it reaches wherever Orleans reactivates the
/// shard (it recovers its checkpoint or reloads its rows there). A request error
/// (ArgumentException) is not retried. Retrying stops when every request of the batch has given up.
/// </summary>
public static class ShardCallRetry
{
    /// <summary>Safety net when the caller passes no token: never retry longer than this.</summary>
    public static readonly TimeSpan MaxRetryTime = TimeSpan.FromSeconds(30);

    /// <summary>Far above a healthy shard call (a few ms) so hedges stay rare under plain load.</summary>
    public static readonly TimeSpan FirstAttemptTimeout = TimeSpan.FromMilliseconds(250);

    internal static readonly TimeSpan MaxAttemptTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan LastBackoff = TimeSpan.FromMilliseconds(200);
    private const int MaxOutstanding = 3;

    // Hedge budget (as in gRPC retry throttling): every first attempt earns HedgeEarn, a hedge costs
    // HedgeCost, so hedges stay under ~5% of calls. An overloaded cluster, where every call is slow,
    // runs the budget dry instead of doubling its own load.
    private const int HedgeEarn = 5, HedgeCost = 100, HedgeBudgetCap = 1000;
    private static int s_hedgeTokens = HedgeBudgetCap;

    /// <param name="earnsHedge">False for calls that are themselves a silo message's fallback or hedge: they must not fund more hedges.</param>
    /// <param name="avoid">Replicas (bit r) to ask only if no other is left, e.g. the one whose silo message just failed.</param>
    public static async Task<PooledLookupResult> LookupAsync(ShardReplicas shard, PooledLookupRequest request, CancellationToken giveUp, bool earnsHedge = true, ulong avoid = 0)
    {
        ArgumentNullException.ThrowIfNull(shard);
        if (earnsHedge) EarnHedge();
        int replica = shard.Choose(avoid);
        if (replica < 0) replica = shard.Choose();
        Task<PooledLookupResult> first = shard.LookupAsync(replica, request);
        try
        {
            return await first.WaitAsync(FirstAttemptTimeout, giveUp).ConfigureAwait(false);
        }
        catch (TimeoutException) when (!first.IsCompleted)
        {
            // No answer yet: keep waiting for it while a hedge goes out.
        }
        catch (Exception e) when (IsTransient(e) && !giveUp.IsCancellationRequested)
        {
            // Failed where the shard lives: retry below.
        }
        catch (Exception e) when (IsNoEmbeddingSilo(e))
        {
            throw new ShardUnavailableException(shard.Key(replica), 1, e);
        }
        return await RetryAsync(shard, request, replica, first, giveUp).ConfigureAwait(false);
    }

    private static ulong Bit(int replica) => replica < 64 ? 1UL << replica : 0;

    private static async Task<PooledLookupResult> RetryAsync(ShardReplicas shard, PooledLookupRequest request, int firstReplica, Task<PooledLookupResult> first, CancellationToken giveUp)
    {
        long started = Environment.TickCount64;
        var outstanding = new List<(Task<PooledLookupResult> Call, int Replica)>(MaxOutstanding);
        if (!first.IsCompleted) outstanding.Add((first, firstReplica));
        bool lastFailed = first.IsCompleted;
        // Replicas that failed since the last backoff: a sibling not among them is asked at once.
        ulong failedInRound = lastFailed ? Bit(firstReplica) : 0;
        bool siblingHedged = false;
        TimeSpan backoff = FirstBackoff, wait = FirstAttemptTimeout;
        Exception? lastError = first.IsFaulted ? first.Exception!.InnerException : null;
        int attempts = 1, lastReplica = firstReplica;
        while (true)
        {
            if (Environment.TickCount64 - started > MaxRetryTime.TotalMilliseconds)
            {
                throw new ShardUnavailableException(shard.Key(lastReplica), attempts, lastError ?? new TimeoutException("no answer"));
            }
            ulong busy = 0;
            foreach ((_, int r) in outstanding) busy |= Bit(r);
            int next = -1;
            bool failover = false;
            if (lastFailed)
            {
                next = shard.Choose(busy | failedInRound);
                failover = next >= 0;
                if (next < 0)
                {
                    // No sibling left to try at once: wait a little before asking again.
                    await Task.Delay(backoff, giveUp).ConfigureAwait(false);
                    backoff = TimeSpan.FromTicks(Math.Min(LastBackoff.Ticks, backoff.Ticks * 2));
                    failedInRound = 0;
                }
            }
            if (next < 0)
            {
                // After a failure a new attempt is always due; while the old one is merely slow, a sibling is
                // asked once for free (another silo), further hedges only if the budget allows.
                int sibling = shard.Choose(busy);
                bool freeSibling = !siblingHedged && sibling >= 0 && outstanding.Count > 0;
                if (outstanding.Count == 0 || (outstanding.Count < MaxOutstanding && (freeSibling || TrySpendHedge())))
                {
                    next = sibling >= 0 ? sibling : shard.Choose();
                    if (freeSibling)
                    {
                        siblingHedged = true;
                        failover = true;
                    }
                }
            }
            if (next >= 0)
            {
                if (failover) shard.CountFailover();
                outstanding.Add((shard.LookupAsync(next, request), next));
                lastReplica = next;
                attempts++;
            }
            wait = TimeSpan.FromTicks(Math.Min(MaxAttemptTimeout.Ticks, wait.Ticks * 2));
            Task<PooledLookupResult> done;
            try
            {
                done = await Task.WhenAny(outstanding.Select(o => o.Call)).WaitAsync(wait, giveUp).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                lastFailed = false;
                continue;
            }
            if (done.IsCompletedSuccessfully) return done.Result;
            int at = outstanding.FindIndex(o => o.Call == done);
            int failedReplica = outstanding[at].Replica;
            outstanding.RemoveAt(at);
            Exception error = done.Exception?.InnerException ?? new OperationCanceledException("shard call canceled");
            if (IsNoEmbeddingSilo(error)) throw new ShardUnavailableException(shard.Key(failedReplica), attempts, error);
            if (!IsTransient(error)) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
            lastError = error;
            lastFailed = true;
            failedInRound |= Bit(failedReplica);
        }
    }

    internal static void EarnHedge()
    {
        if (Volatile.Read(ref s_hedgeTokens) < HedgeBudgetCap) Interlocked.Add(ref s_hedgeTokens, HedgeEarn);
    }

    internal static bool TrySpendHedge()
    {
        while (true)
        {
            int tokens = Volatile.Read(ref s_hedgeTokens);
            if (tokens < HedgeCost) return false;
            if (Interlocked.CompareExchange(ref s_hedgeTokens, tokens - HedgeCost, tokens) == tokens) return true;
        }
    }

    private static bool IsNoEmbeddingSilo(Exception e) => e is OrleansException && e.Message.Contains("No active silo has the", StringComparison.Ordinal);

    /// <summary>Failures of where the shard lives (silo gone, message rejected, no answer), not of what was asked.</summary>
    public static bool IsTransient(Exception e) => e switch
    {
        ArgumentException => false,
        OrleansMessageRejectionException or SiloUnavailableException or TimeoutException => true,
        Orleans.Runtime.Messaging.ConnectionFailedException => true,
        // No embedding silo at all: waiting out the deadline would only turn a clear 503 into a 504.
        OrleansException oe when oe.Message.Contains("No active silo has the", StringComparison.Ordinal) => false,
        // Placement and activation failures while membership settles.
        OrleansException => true,
        // A shard that was deactivating when the call arrived, or activated on a silo that is stopping.
        InvalidOperationException ioe when ioe.Message.Contains("must not activate", StringComparison.Ordinal) => true,
        AggregateException { InnerExceptions.Count: 1 } a => IsTransient(a.InnerExceptions[0]),
        _ => false,
    };
}

/// <summary>A shard could not be reached before the batch's requests gave up: the HTTP layer answers 503.</summary>
public sealed class ShardUnavailableException(string shard, int attempts, Exception inner)
    : Exception($"embedding shard {shard} unavailable after {attempts} attempt(s): {inner.GetType().Name}: {inner.Message}", inner)
{
    public string Shard { get; } = shard;
}

/// <summary>Cancels once every request of a merged batch has given up (deadline or client gone): nobody waits for the retries any more.</summary>
public sealed class BatchGiveUp : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly List<CancellationTokenRegistration> _registrations;
    private int _waiting;

    public BatchGiveUp(IReadOnlyCollection<CancellationToken> requestDeadlines)
    {
        ArgumentNullException.ThrowIfNull(requestDeadlines);
        _waiting = requestDeadlines.Count;
        _registrations = new List<CancellationTokenRegistration>(requestDeadlines.Count);
        foreach (CancellationToken deadline in requestDeadlines) _registrations.Add(deadline.Register(OneGaveUp));
    }

    public CancellationToken Token => _source.Token;

    private void OneGaveUp()
    {
        if (Interlocked.Decrement(ref _waiting) == 0) _source.Cancel();
    }

    public void Dispose()
    {
        foreach (CancellationTokenRegistration r in _registrations) r.Dispose();
        _source.Dispose();
    }
}
