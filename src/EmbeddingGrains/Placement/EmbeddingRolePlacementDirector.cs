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

    /// <summary>How long placement waits for silo metadata to arrive (it follows membership by a moment at startup).</summary>
    private static readonly TimeSpan MetadataWait = TimeSpan.FromSeconds(5);

    public async Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        long deadline = Environment.TickCount64 + (long)MetadataWait.TotalMilliseconds;
        while (true)
        {
            SiloAddress? chosen = Choose(target, context, out int compatible);
            if (chosen is not null) return chosen;
            if (Environment.TickCount64 >= deadline)
            {
                throw new OrleansException($"No active silo has the '{EmbeddingShardOptions.EmbeddingRole}' role to host {target.GrainIdentity} ({compatible} compatible silos)");
            }
            await Task.Delay(100);
        }
    }

    private SiloAddress? Choose(PlacementTarget target, IPlacementContext context, out int compatibleCount)
    {
        SiloAddress[] compatible = context.GetCompatibleSilos(target);
        compatibleCount = compatible.Length;
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
        return best;
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
