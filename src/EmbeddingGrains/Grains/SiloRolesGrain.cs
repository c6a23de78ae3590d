using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Hosting;
using Recsys.EmbeddingGrains.Placement;

namespace Recsys.EmbeddingGrains.Grains;

[ShardHostPlacement, Reentrant]
internal sealed class SiloRolesGrain(IOptions<EmbeddingShardOptions> options) : Grain, ISiloRolesGrain
{
    public Task<string[]> GetRoles() => Task.FromResult(options.Value.Roles);
}
