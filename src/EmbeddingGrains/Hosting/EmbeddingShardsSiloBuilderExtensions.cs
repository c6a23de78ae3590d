using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Recsys.EmbeddingGrains.Loading;
using Recsys.EmbeddingGrains.Placement;
using Recsys.EmbeddingGrains.Serving;

namespace Recsys.EmbeddingGrains.Hosting;

public static class EmbeddingShardsSiloBuilderExtensions
{
    /// <summary>
    /// Call on every silo of the cluster, whatever its roles: it advertises the silo's roles in the
    /// silo metadata and registers the placement directors every silo needs to place shards and
    /// shard hosts (the per-silo lookup entry); silos
    /// whose <see cref="EmbeddingShardOptions.Roles"/> include "embedding" also host shards.
    /// This calls <c>UseSiloMetadata</c>; do not call it again with other metadata.
    /// </summary>
    public static ISiloBuilder AddEmbeddingShards(this ISiloBuilder builder, Action<EmbeddingShardOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        // Roles are needed now, for the metadata dictionary; the options themselves bind later.
        var roles = new EmbeddingShardOptions();
        configure(roles);
        builder.UseSiloMetadata(new Dictionary<string, string> { [SiloRoles.MetadataKey] = SiloRoles.Format(roles.Roles) });
        builder.Services.Configure(configure);
        builder.Services.AddSingleton<ShardLoadProgress>();
        builder.Services.AddSingleton<SiloRowBudget>();
        builder.Services.AddSingleton<LocalResidentShards>();
        builder.Services.AddSingleton<ShardActivationGate>();
        builder.Services.AddSingleton<LocalShards>();
        builder.Services.AddSingleton<EmbeddingSilos>();
        builder.Services.AddSingleton<ShardRebalancer>();
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<ShardRebalancer>());
        builder.Services.AddPlacementDirector<EmbeddingRolePlacement, EmbeddingRolePlacementDirector>();
        builder.Services.AddPlacementDirector<ShardHostPlacement, ShardHostPlacementDirector>();
        return builder;
    }
}
