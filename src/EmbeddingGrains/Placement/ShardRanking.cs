namespace Recsys.EmbeddingGrains.Placement;

/// <summary>
/// Rendezvous (highest random weight) ranking of embedding silos for one grain: each silo scores
/// hash(grain, silo) and the highest score wins. Every silo computes the same winner from the same
/// silo list without coordination, and a silo joining takes only the grains it now wins (about
/// 1/N of them), a silo leaving hands on only the grains it held. The placement director and the
/// rebalancer both rank with this, so "where a shard should live" has one definition.
/// </summary>
public static class ShardRanking
{
    /// <summary>The silo that should host <paramref name="grain"/> (its GrainId text), or null when there is none.</summary>
    public static SiloAddress? Preferred(string grain, IEnumerable<SiloAddress> embeddingSilos)
    {
        ArgumentNullException.ThrowIfNull(grain);
        ArgumentNullException.ThrowIfNull(embeddingSilos);
        ulong keyHash = KeyHash(grain);
        SiloAddress? best = null;
        ulong bestScore = 0;
        foreach (SiloAddress silo in embeddingSilos)
        {
            ulong score = Score(keyHash, silo);
            if (best is null || score > bestScore || (score == bestScore && silo.CompareTo(best) < 0))
            {
                best = silo;
                bestScore = score;
            }
        }
        return best;
    }

    /// <summary>FNV-1a of the grain id's text: stable across processes, unlike string.GetHashCode.</summary>
    public static ulong KeyHash(string grain)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in grain) h = (h ^ c) * 1099511628211UL;
        return h;
    }

    public static ulong Score(ulong keyHash, SiloAddress silo) => Mix(keyHash ^ (uint)silo.GetConsistentHashCode());

    /// <summary>SplitMix64's finalizer: spreads the xor of two hashes over all 64 bits.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
