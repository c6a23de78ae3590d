namespace Recsys.EmbeddingGrains.Contracts;

/// <summary>
/// One shard of one embedding table, keyed "{model}/{version}/{table}/{shard}" (see <see cref="ShardKey"/>).
/// It pools its rows per bag where they live, so callers receive bags x dim floats, not rows x dim.
/// </summary>
public interface IEmbeddingShardGrain : IGrainWithStringKey
{
    /// <summary>Partial pooled sums (always sum: the caller divides for mean pooling once all shards answered).</summary>
    Task<PooledLookupResult> Lookup(PooledLookupRequest request);

    /// <summary>Replaces rows (global row ids owned by this shard) while lookups continue.</summary>
    Task UpsertRows(RowUpsert upsert);

    /// <summary>Load state, rows held, cache statistics.</summary>
    Task<ShardStatus> GetStatus();

    /// <summary>Forces a FASTER checkpoint now (also taken on a timer and at deactivation).</summary>
    Task Checkpoint();

    /// <summary>
    /// Deactivates this shard once it is idle if it runs on <paramref name="from"/>, so it is placed
    /// again (on the silo the placement now prefers); false, and nothing happens, if it runs elsewhere.
    /// Interleaves with lookups: it only schedules the deactivation, which waits for the running call.
    /// </summary>
    [Orleans.Concurrency.AlwaysInterleave]
    Task<bool> Rebalance(SiloAddress from);
}

/// <summary>
/// Ids are global row ids of the table; every id must belong to this shard (id mod S == shard).
/// Offsets has Bags + 1 entries (CSR). Weights is null or one weight per id.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class PooledLookupRequest
{
    [Id(0)] public long[] Ids { get; init; } = [];
    [Id(1)] public int[] Offsets { get; init; } = [0];
    [Id(2)] public float[]? Weights { get; init; }
}

/// <summary>Bags x Dim partial sums, row-major.</summary>
[GenerateSerializer, Immutable]
public sealed class PooledLookupResult
{
    [Id(0)] public int Bags { get; init; }
    [Id(1)] public int Dim { get; init; }
    [Id(2)] public float[] Pooled { get; init; } = [];
    /// <summary>The silo that answered: front ends keep their shard -> silo map from these reports.</summary>
    [Id(3)] public SiloAddress? Silo { get; init; }
    /// <summary>Which replica of the shard answered (0 without replicas), so the silo is recorded for that replica.</summary>
    [Id(4)] public int Replica { get; init; }
}

/// <summary>New fp32 values for rows (Ids.Length x Dim, row-major); the shard encodes them in its row format.</summary>
[GenerateSerializer, Immutable]
public sealed class RowUpsert
{
    [Id(0)] public long[] Ids { get; init; } = [];
    [Id(1)] public float[] Values { get; init; } = [];
}

[GenerateSerializer, Immutable]
public sealed class ShardStatus
{
    [Id(0)] public string Key { get; init; } = "";
    [Id(1)] public string Silo { get; init; } = "";
    [Id(2)] public long Rows { get; init; }
    [Id(3)] public long ResidentRows { get; init; }
    [Id(4)] public long Lookups { get; init; }
    [Id(5)] public long CacheHits { get; init; }
    [Id(6)] public long CacheMisses { get; init; }
    [Id(7)] public bool RecoveredFromCheckpoint { get; init; }
    /// <summary>Cache misses that FASTER served from its disk log rather than its in-memory pages.</summary>
    [Id(8)] public long DiskReads { get; init; }
    /// <summary>True when the shard's grant holds all its rows (flat array, FASTER never read).</summary>
    [Id(9)] public bool FullyResident { get; init; }
    /// <summary>The hosting silo as an address (Silo is its display form), for front ends' shard -> silo map.</summary>
    [Id(10)] public SiloAddress? SiloAddress { get; init; }
}

/// <summary>
/// Builds and parses the shard grain key "{model}/{version}/{table}/{shard}" and, for replica r >= 1
/// of that shard, "{model}/{version}/{table}/{shard}/r{r}". Replica 0 keeps the plain key, so
/// stores and references from before replicas are unchanged.
/// </summary>
public static class ShardKey
{
    public static string Format(string model, string version, string table, int shard, int replica = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(replica);
        return replica == 0 ? $"{model}/{version}/{table}/{shard}" : $"{model}/{version}/{table}/{shard}/r{replica}";
    }

    /// <summary>The shard a key names, whichever replica.</summary>
    public static (string Model, string Version, string Table, int Shard) Parse(string key)
    {
        (string model, string version, string table, int shard, _) = ParseReplica(key);
        return (model, version, table, shard);
    }

    public static (string Model, string Version, string Table, int Shard, int Replica) ParseReplica(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        string[] parts = key.Split('/');
        int replica = 0;
        bool valid = parts.Length is 4 or 5 && int.TryParse(parts[3], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int shard)
            && (parts.Length == 4 || TryReplica(parts[4], out replica));
        if (!valid)
        {
            throw new ArgumentException($"shard key '{key}' is not model/version/table/shard or model/version/table/shard/rN (N >= 1)", nameof(key));
        }
        return (parts[0], parts[1], parts[2], int.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture), replica);
    }

    /// <summary>
    /// Splits a replica's suffix off a shard key or a shard's GrainId text: (text without "/rN", N),
    /// or (text, 0) for replica 0. The placement ranks every replica of a shard over the base text.
    /// </summary>
    public static (string Base, int Replica) SplitReplica(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int slash = text.LastIndexOf('/');
        return slash >= 0 && TryReplica(text.AsSpan(slash + 1), out int replica) ? (text[..slash], replica) : (text, 0);
    }

    private static bool TryReplica(ReadOnlySpan<char> part, out int replica)
    {
        replica = 0;
        return part.Length >= 2 && part[0] == 'r' && part[1] != '0'
            && int.TryParse(part[1..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out replica) && replica >= 1;
    }
}
