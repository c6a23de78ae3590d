using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Hosting;

namespace Recsys.EmbeddingGrains.Placement;

/// <summary>
/// Which silos host shards: those whose silo metadata lists the embedding role. The local silo is
/// judged by its own options, because its metadata reaches the cache a moment after it starts.
/// A remote silo whose metadata has not arrived counts as not embedding until it does, or until
/// <see cref="ResolveMissingAsync"/> has asked the silo itself.
/// </summary>
public sealed class EmbeddingSilos(ISiloMetadataCache metadata, IOptions<EmbeddingShardOptions> options)
{
    /// <summary>A silo that does not answer within this is asked again on the next pass.</summary>
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    private readonly bool _localHostsShards = options.Value.HostsShards;
    private readonly ConcurrentDictionary<SiloAddress, bool> _answers = new();

    public bool HostsShards(SiloAddress silo, SiloAddress localSilo)
    {
        if (silo.Equals(localSilo)) return _localHostsShards;
        SiloMetadata known = metadata.GetSiloMetadata(silo);
        if (known.Metadata.ContainsKey(SiloRoles.MetadataKey)) return SiloRoles.Has(known, EmbeddingShardOptions.EmbeddingRole);
        return _answers.TryGetValue(silo, out bool hosts) && hosts;
    }

    /// <summary>The embedding silos among <paramref name="candidates"/> (active, compatible silos).</summary>
    public List<SiloAddress> Filter(IEnumerable<SiloAddress> candidates, SiloAddress localSilo) =>
        candidates.Where(s => HostsShards(s, localSilo)).ToList();

    /// <summary>Asks every active silo without roles in the metadata cache for its roles; returns how many answered.</summary>
    public async Task<int> ResolveMissingAsync(IEnumerable<SiloAddress> active, SiloAddress localSilo, IGrainFactory grains)
    {
        var asking = new List<(SiloAddress Silo, Task<string[]> Roles)>();
        foreach (SiloAddress silo in active)
        {
            if (silo.Equals(localSilo) || _answers.ContainsKey(silo)) continue;
            if (metadata.GetSiloMetadata(silo).Metadata.ContainsKey(SiloRoles.MetadataKey)) continue;
            asking.Add((silo, grains.GetGrain<ISiloRolesGrain>(ShardHostKey.Format(silo)).GetRoles().WaitAsync(AskTimeout)));
        }
        int answered = 0;
        foreach ((SiloAddress silo, Task<string[]> roles) in asking)
        {
            try
            {
                _answers[silo] = (await roles).Contains(EmbeddingShardOptions.EmbeddingRole, StringComparer.OrdinalIgnoreCase);
                answered++;
            }
            catch (Exception e) when (e is TimeoutException or OrleansException)
            {
                // Still starting, or gone: the next pass asks again.
            }
        }
        return answered;
    }

    /// <summary>Forgets answers of silos no longer in <paramref name="members"/> (a restarted silo has a new address).</summary>
    public void Forget(IReadOnlySet<SiloAddress> members)
    {
        foreach (SiloAddress silo in _answers.Keys)
        {
            if (!members.Contains(silo)) _answers.TryRemove(silo, out _);
        }
    }
}
