using Microsoft.Extensions.Options;

namespace Recsys.EmbeddingGrains.Hosting;

/// <summary>
/// Lets at most <see cref="EmbeddingShardOptions.MaxConcurrentActivations"/> shards of this silo
/// load or recover at once (one per silo). Counts what it did, so tests and operators can see that
/// the cap held and how often a shard had to wait.
/// </summary>
public sealed class ShardActivationGate : IDisposable
{
    private readonly SemaphoreSlim _slots;
    private int _inside;
    private int _peak;
    private long _waited;

    public ShardActivationGate(IOptions<EmbeddingShardOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        int cap = options.Value.MaxConcurrentActivations;
        if (cap < 1) throw new ArgumentOutOfRangeException(nameof(options), cap, $"{nameof(EmbeddingShardOptions.MaxConcurrentActivations)} must be at least 1");
        Capacity = cap;
        _slots = new SemaphoreSlim(cap, cap);
    }

    public int Capacity { get; }

    /// <summary>Loads running now.</summary>
    public int Inside => Volatile.Read(ref _inside);

    /// <summary>The most loads that ever ran at once on this silo.</summary>
    public int Peak => Volatile.Read(ref _peak);

    /// <summary>Activations that found every slot taken and waited.</summary>
    public long Waited => Interlocked.Read(ref _waited);

    /// <summary>Waits for a slot; dispose the lease when the load is done (also when it failed).</summary>
    public async ValueTask<Lease> EnterAsync(CancellationToken cancellationToken)
    {
        if (!_slots.Wait(0))
        {
            Interlocked.Increment(ref _waited);
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        int inside = Interlocked.Increment(ref _inside);
        int peak;
        while (inside > (peak = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, inside, peak) != peak)
        {
            // Another load raised the peak meanwhile: compare again.
        }
        return new Lease(this);
    }

    private void Exit()
    {
        Interlocked.Decrement(ref _inside);
        _slots.Release();
    }

    public void Dispose() => _slots.Dispose();

    public readonly struct Lease(ShardActivationGate gate) : IDisposable
    {
        public void Dispose() => gate?.Exit();
    }
}
