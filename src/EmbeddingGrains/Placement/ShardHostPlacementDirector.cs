using Orleans.Runtime.Placement;
using Recsys.EmbeddingGrains.Contracts;

namespace Recsys.EmbeddingGrains.Placement;

/// <summary>
/// Places a shard host on the silo its key names. If that silo is not an active member (it died,
/// left, or restarted with a new generation) placement fails at once: the caller then reaches the
/// shards one by one, wherever they live now, instead of a host somewhere else that would only
/// forward every slice across the network again.
/// </summary>
public sealed class ShardHostPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string key = target.GrainIdentity.Key.ToString()!;
        SiloAddress wanted = ShardHostKey.Parse(key);
        foreach (SiloAddress silo in context.GetCompatibleSilos(target))
        {
            if (silo.Equals(wanted)) return Task.FromResult(silo);
        }
        // A faulted task, not a throw: callers await placement, and a synchronous throw is not what they expect from it.
        return Task.FromException<SiloAddress>(new SiloUnavailableException($"silo {wanted} of shard host {key} is not an active member of the cluster"));
    }
}
