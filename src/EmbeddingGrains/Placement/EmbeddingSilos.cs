using Microsoft.Extensions.Options;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Recsys.EmbeddingGrains.Hosting;

namespace Recsys.EmbeddingGrains.Placement;

/// <summary>
/// Which silos host shards: those whose silo metadata lists the embedding role. The local silo is
/// judged by its own options, because its metadata reaches the cache a moment after it starts.
/// A remote silo whose metadata has not arrived yet counts as not embedding until it does.
/// </summary>
public sealed class EmbeddingSilos(ISiloMetadataCache metadata, IOptions<EmbeddingShardOptions> options)
{
    private readonly bool _localHostsShards = options.Value.HostsShards;

    public bool HostsShards(SiloAddress silo, SiloAddress localSilo) =>
        silo.Equals(localSilo) ? _localHostsShards : SiloRoles.Has(metadata.GetSiloMetadata(silo), EmbeddingShardOptions.EmbeddingRole);

    /// <summary>The embedding silos among <paramref name="candidates"/> (active, compatible silos).</summary>
    public List<SiloAddress> Filter(IEnumerable<SiloAddress> candidates, SiloAddress localSilo) =>
        candidates.Where(s => HostsShards(s, localSilo)).ToList();
}
