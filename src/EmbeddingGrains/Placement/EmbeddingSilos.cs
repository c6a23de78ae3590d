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
    private readonly ConcurrentDictionary<SiloAddress, bool> _told = new();

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

    /// <summary>Records a silo's roles as it told them (<see cref="ISiloRolesGrain.Announce"/>) or answered them.</summary>
    public void Learn(SiloAddress silo, IEnumerable<string> roles)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(roles);
        _answers[silo] = roles.Contains(EmbeddingShardOptions.EmbeddingRole, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Active silos whose roles are known neither from the metadata cache nor from the silo itself.</summary>
    public List<SiloAddress> Unknown(IEnumerable<SiloAddress> active, SiloAddress localSilo) =>
        active.Where(s => !s.Equals(localSilo) && !_answers.ContainsKey(s) && !metadata.GetSiloMetadata(s).Metadata.ContainsKey(SiloRoles.MetadataKey)).ToList();

    /// <summary>Asks every active silo without roles in the metadata cache for its roles; returns how many answered.</summary>
    public async Task<int> ResolveMissingAsync(IEnumerable<SiloAddress> active, SiloAddress localSilo, IGrainFactory grains)
    {
        var asking = Unknown(active, localSilo).Select(silo => (Silo: silo, Roles: grains.GetGrain<ISiloRolesGrain>(ShardHostKey.Format(silo)).GetRoles().WaitAsync(AskTimeout))).ToList();
        int answered = 0;
        foreach ((SiloAddress silo, Task<string[]> roles) in asking)
        {
            try
            {
                Learn(silo, await roles);
                answered++;
            }
            catch (Exception e) when (e is TimeoutException or OrleansException)
            {
                // Still starting, or gone: the next pass asks again.
            }
        }
        return answered;
    }

    /// <summary>
    /// Tells every active silo not told yet this silo's roles, so a silo whose metadata fetch of this
    /// one failed still sees it as a shard host. The call is placed here, with this silo's view, and
    /// only delivered there. Returns the silos that could not be told (asked again next pass).
    /// </summary>
    public async Task<List<SiloAddress>> AnnounceAsync(IEnumerable<SiloAddress> active, SiloAddress localSilo, string[] roles, IGrainFactory grains)
    {
        var telling = active.Where(s => !s.Equals(localSilo) && !_told.ContainsKey(s))
            .Select(silo => (Silo: silo, Call: grains.GetGrain<ISiloRolesGrain>(ShardHostKey.Format(silo)).Announce(localSilo, roles).WaitAsync(AskTimeout))).ToList();
        var failed = new List<SiloAddress>();
        foreach ((SiloAddress silo, Task call) in telling)
        {
            try
            {
                await call;
                _told[silo] = true;
            }
            catch (Exception e) when (e is TimeoutException or OrleansException)
            {
                failed.Add(silo);
            }
        }
        return failed;
    }

    /// <summary>Forgets answers of silos no longer in <paramref name="members"/> (a restarted silo has a new address).</summary>
    public void Forget(IReadOnlySet<SiloAddress> members)
    {
        foreach (SiloAddress silo in _answers.Keys)
        {
            if (!members.Contains(silo)) _answers.TryRemove(silo, out _);
        }
        foreach (SiloAddress silo in _told.Keys)
        {
            if (!members.Contains(silo)) _told.TryRemove(silo, out _);
        }
    }
}
