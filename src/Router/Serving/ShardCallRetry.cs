using Recsys.EmbeddingGrains.Contracts;

namespace Recsys.Router.Serving;

/// <summary>
/// One shard lookup that survives its silo going away: when the call fails because the silo died,
/// left or refused the message, it is sent again after a short backoff. The grain reference is
/// location-transparent, so the retry reaches wherever Orleans reactivates the shard (it recovers
/// its checkpoint or reloads its rows there). Only whole answers are ever used; a request error
/// (ArgumentException) is not retried. Retrying stops when every request of the batch has given up.
/// </summary>
public static class ShardCallRetry
{
    /// <summary>Safety net when the caller passes no token: never retry longer than this.</summary>
    public static readonly TimeSpan MaxRetryTime = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan LastBackoff = TimeSpan.FromMilliseconds(200);

    public static async Task<PooledLookupResult> LookupAsync(IEmbeddingShardGrain shard, PooledLookupRequest request, CancellationToken giveUp)
    {
        long started = Environment.TickCount64;
        TimeSpan backoff = FirstBackoff;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await shard.Lookup(request).WaitAsync(giveUp).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e) && !giveUp.IsCancellationRequested && Environment.TickCount64 - started < MaxRetryTime.TotalMilliseconds)
            {
                await Task.Delay(backoff, giveUp).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(LastBackoff.Ticks, backoff.Ticks * 2));
            }
            catch (Exception e) when (IsTransient(e) || IsNoEmbeddingSilo(e))
            {
                throw new ShardUnavailableException(shard.GetPrimaryKeyString(), attempt, e);
            }
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
