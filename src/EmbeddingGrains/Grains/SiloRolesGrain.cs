using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Hosting;
using Recsys.EmbeddingGrains.Placement;

namespace Recsys.EmbeddingGrains.Grains;

[ShardHostPlacement, Reentrant]
internal sealed class SiloRolesGrain(IOptions<EmbeddingShardOptions> options, EmbeddingSilos embeddingSilos) : Grain, ISiloRolesGrain
{
    public Task<string[]> GetRoles() => Task.FromResult(options.Value.Roles);

    public Task Announce(SiloAddress silo, string[] roles)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(roles);
        embeddingSilos.Learn(silo, roles);
        return Task.CompletedTask;
    }
}
