namespace Recsys.EmbeddingGrains.Contracts;

/// <summary>
/// A silo's roles, asked of the silo itself (keyed and placed like <see cref="IShardHostGrain"/>:
/// by <see cref="ShardHostKey"/>, activated only on that silo). The fallback when Orleans' silo
/// metadata cache has no entry for an active silo: a fetch that fails while the silo is still
/// joining is not retried until membership changes again, which in a quiet cluster is never.
/// </summary>
public interface ISiloRolesGrain : IGrainWithStringKey
{
    Task<string[]> GetRoles();
}
