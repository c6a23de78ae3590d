using Orleans.Concurrency;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Placement;

namespace Recsys.EmbeddingGrains.Grains;

/// <summary>
/// A silo's lookup entry: fans one message's slices out to the shards as grain calls, in parallel,
/// and answers their partial sums together. Reentrant and stateless: every front end's batches go
/// through the same activation at once, each only waits for its own shards; the shards keep their
/// own one-at-a-time turns. Any shard's failure fails the whole message, never part of it: the
/// caller then retries every slice per shard, so no answer mixes in a missing part.
/// </summary>
[ShardHostPlacement, Reentrant]
internal sealed class ShardHostGrain : Grain, IShardHostGrain
{
    public async Task<SiloLookupResult> Lookup(SiloLookupRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Shards is null || request.Slices is null) throw new ArgumentException("Shards and Slices must not be null", nameof(request));
        if (request.Shards.Length != request.Slices.Length)
        {
            throw new ArgumentException($"{request.Shards.Length} shards for {request.Slices.Length} slices: one shard per slice", nameof(request));
        }
        // Sent from the thread pool, not from this activation: the sends and the answers' completions
        // then run on any thread instead of queueing one by one behind this activation's scheduler.
        PooledLookupResult[] parts = await Task.Run(() =>
        {
            var calls = new Task<PooledLookupResult>[request.Slices.Length];
            for (int i = 0; i < calls.Length; i++) calls[i] = request.Shards[i].Lookup(request.Slices[i]);
            return Task.WhenAll(calls);
        });
        return new SiloLookupResult { Parts = parts };
    }
}
