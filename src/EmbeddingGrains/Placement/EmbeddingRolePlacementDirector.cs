using Orleans.Runtime.Placement;
using Recsys.EmbeddingGrains.Hosting;

namespace Recsys.EmbeddingGrains.Placement;

/// <summary>
/// Places a shard on one of the compatible silos that advertise the embedding role, chosen by
/// <see cref="ShardRanking"/> (rendezvous hashing of the grain key): every silo makes the same
/// choice without coordination, shards spread evenly, and a silo joining or leaving moves only the
/// shards it wins or held; replica r of a shard goes to the r-th silo of its ranking. Shards already active when a silo joins are moved by
/// <see cref="ShardRebalancer"/>, which ranks with the same function.
/// </summary>
public sealed class EmbeddingRolePlacementDirector(EmbeddingSilos embeddingSilos) : IPlacementDirector
{
    /// <summary>How long placement waits for silo metadata to arrive (it follows membership by a moment at startup).</summary>
    private static readonly TimeSpan MetadataWait = TimeSpan.FromSeconds(5);

    public async Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        long deadline = Environment.TickCount64 + (long)MetadataWait.TotalMilliseconds;
        while (true)
        {
            SiloAddress[] compatible = context.GetCompatibleSilos(target);
            SiloAddress? chosen = ShardRanking.ForReplica(target.GrainIdentity.ToString(), embeddingSilos.Filter(compatible, context.LocalSilo));
            if (chosen is not null) return chosen;
            if (Environment.TickCount64 >= deadline)
            {
                throw new OrleansException($"No active silo has the '{EmbeddingShardOptions.EmbeddingRole}' role to host {target.GrainIdentity} ({compatible.Length} compatible silos)");
            }
            await Task.Delay(100);
        }
    }
}
