using Recsys.EmbeddingGrains.Contracts;

namespace Recsys.EmbeddingGrains.Placement;

/// <summary>
/// Rendezvous (highest random weight) ranking of embedding silos for one grain: each silo scores
/// hash(grain, silo) and the highest score wins. Every silo computes the same winner from the same
/// silo list without coordination, and a silo joining takes only the grains it now wins (about
/// 1/N of them), a silo leaving hands on only the grains it held. The placement director and the
/// rebalancer both rank with this, so "where a shard should live" has one definition.
/// Replica r of a shard (<see cref="ShardKey"/> suffix "/rN") goes to the r-th silo of the ranking
/// of the shard's base key: siblings never share a silo while there are at least as many embedding
/// silos as replicas, and a silo joining moves a replica only if it takes that replica's rank.
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

    /// <summary>
    /// The first <paramref name="count"/> silos of <paramref name="grain"/>'s ranking, best first
    /// (fewer when there are fewer silos). The same order <see cref="Preferred"/> picks its winner by.
    /// </summary>
    public static SiloAddress[] Top(string grain, IEnumerable<SiloAddress> embeddingSilos, int count)
    {
        ArgumentNullException.ThrowIfNull(grain);
        ArgumentNullException.ThrowIfNull(embeddingSilos);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ulong keyHash = KeyHash(grain);
        // Silo lists are short (a handful to a few dozen): sorting them all beats a heap.
        (ulong Score, SiloAddress Silo)[] ranked = embeddingSilos.Select(s => (Score(keyHash, s), s)).ToArray();
        Array.Sort(ranked, static (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Silo.CompareTo(b.Silo));
        var top = new SiloAddress[Math.Min(count, ranked.Length)];
        for (int i = 0; i < top.Length; i++) top[i] = ranked[i].Silo;
        return top;
    }

    /// <summary>
    /// Where a shard replica should live: for "{base}/rN" the N-th silo of the base's ranking (N
    /// mod the silo count when there are fewer silos than replicas: siblings then share silos),
    /// for a plain key its <see cref="Preferred"/> silo. Null when there is no silo.
    /// </summary>
    public static SiloAddress? ForReplica(string grain, IEnumerable<SiloAddress> embeddingSilos)
    {
        (string baseGrain, int replica) = ShardKey.SplitReplica(grain);
        if (replica == 0) return Preferred(grain, embeddingSilos);
        SiloAddress[] all = Top(baseGrain, embeddingSilos, int.MaxValue);
        return all.Length == 0 ? null : all[replica % all.Length];
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
