namespace Recsys.EmbeddingGrains.Contracts;

/// <summary>
/// Silo roles exchanged between silos directly (keyed and placed like <see cref="IShardHostGrain"/>:
/// by <see cref="ShardHostKey"/>, activated only on that silo). The fallback when Orleans' silo
/// metadata cache has no entry for an active silo: its fetch, made when it sees a silo join, is not
/// retried until membership changes again, which in a quiet cluster is never, and we saw a silo
/// never learn a joined silo's roles.
/// </summary>
public interface ISiloRolesGrain : IGrainWithStringKey
{
    /// <summary>The roles of the silo this grain lives on.</summary>
    Task<string[]> GetRoles();

    /// <summary>Tells the silo this grain lives on the roles of <paramref name="silo"/> (sent by that silo itself).</summary>
    Task Announce(SiloAddress silo, string[] roles);
}
