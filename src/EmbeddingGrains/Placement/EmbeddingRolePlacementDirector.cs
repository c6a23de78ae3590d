using Microsoft.Extensions.Options;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Runtime.Placement;
using Recsys.EmbeddingGrains.Hosting;

namespace Recsys.EmbeddingGrains.Placement;

/// <summary>
/// Places a shard on one of the compatible silos that advertise the embedding role, chosen by
/// rendezvous hashing of the grain key: every silo makes the same choice without coordination,
/// shards spread evenly, and a silo joining or leaving moves only the shards it wins or held.
/// </summary>
public sealed class EmbeddingRolePlacementDirector(ISiloMetadataCache metadata, IOptions<EmbeddingShardOptions> options) : IPlacementDirector
{
    private readonly bool _localHostsShards = options.Value.HostsShards;

    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        SiloAddress[] compatible = context.GetCompatibleSilos(target);
        ulong keyHash = Fnv1a(target.GrainIdentity.ToString());
        SiloAddress? best = null;
        ulong bestScore = 0;
        foreach (SiloAddress silo in compatible)
        {
            // The local silo knows its own roles before its metadata reaches the cache.
            bool embedding = silo.Equals(context.LocalSilo) ? _localHostsShards : SiloRoles.Has(metadata.GetSiloMetadata(silo), EmbeddingShardOptions.EmbeddingRole);
            if (!embedding) continue;
            ulong score = Mix(keyHash ^ (uint)silo.GetConsistentHashCode());
            if (best is null || score > bestScore)
            {
                best = silo;
                bestScore = score;
            }
        }
        if (best is null)
        {
            throw new OrleansException($"No active silo has the '{EmbeddingShardOptions.EmbeddingRole}' role to host {target.GrainIdentity} ({compatible.Length} compatible silos)");
        }
        return Task.FromResult(best);
    }

    private static ulong Fnv1a(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in text) h = (h ^ c) * 1099511628211UL;
        return h;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
