namespace Recsys.EmbeddingGrains.Contracts;

/// <summary>
/// The lookup entry of one silo, keyed by that silo's address (<see cref="ShardHostKey"/>) and
/// always activated there. A front end sends it, in one message, every shard slice of a batch
/// whose shard lives on that silo; it calls those shards in parallel (local calls: the messages
/// are immutable, nothing is copied) and answers all partial sums in one message. One message per
/// (batch, silo) instead of one per (table, shard) is what keeps a multi-process cluster close to
/// a single process. A slice whose shard has moved elsewhere is still answered (the shard
/// reference is location-transparent), only slower; its result names the silo it came from.
/// </summary>
public interface IShardHostGrain : IGrainWithStringKey
{
    /// <summary>Parts[i] is Shards[i]'s answer to Slices[i].</summary>
    Task<SiloLookupResult> Lookup(SiloLookupRequest request);
}

/// <summary>A batch's slices for one silo: Slices[i] goes to Shards[i].</summary>
[GenerateSerializer, Immutable]
public sealed class SiloLookupRequest
{
    [Id(0)] public IEmbeddingShardGrain[] Shards { get; init; } = [];
    [Id(1)] public PooledLookupRequest[] Slices { get; init; } = [];
}

/// <summary>Parts[i] answers the request's Slices[i].</summary>
[GenerateSerializer, Immutable]
public sealed class SiloLookupResult
{
    [Id(0)] public PooledLookupResult[] Parts { get; init; } = [];
}

/// <summary>The shard host key of a silo: its parsable address, generation included, so a restarted silo gets a new host.</summary>
public static class ShardHostKey
{
    public static string Format(SiloAddress silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        return silo.ToParsableString();
    }

    public static SiloAddress Parse(string key)
    {
        try
        {
            return SiloAddress.FromParsableString(key);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or IndexOutOfRangeException)
        {
            throw new ArgumentException($"shard host key '{key}' is not a silo address (ip:port@generation)", nameof(key), e);
        }
    }
}
