using Recsys.EmbeddingGrains.Contracts;

namespace Recsys.EmbeddingGrains.Sharding;

/// <summary>
/// Row id i of a table of <see cref="Rows"/> rows lives in shard i mod S at local slot i / S.
/// Every silo computes owners without asking anyone, and each shard's slots are dense
/// (0 .. SlotsIn(shard)), so a shard can hold its rows in a flat array.
/// </summary>
public readonly struct ShardMap
{
    public ShardMap(long rows, int shards)
    {
        if (rows < 1) throw new ArgumentOutOfRangeException(nameof(rows), rows, "a table needs at least one row");
        if (shards < 1 || shards > rows) throw new ArgumentOutOfRangeException(nameof(shards), shards, $"shards must be in [1, {rows}] for {rows} rows");
        Rows = rows;
        Shards = shards;
    }

    public long Rows { get; }
    public int Shards { get; }

    public int ShardOf(long id) => (int)(id % Shards);

    public long SlotOf(long id) => id / Shards;

    public long GlobalId(int shard, long slot) => slot * Shards + shard;

    /// <summary>Slots held by <paramref name="shard"/>: the ids in [0, Rows) congruent to it mod S.</summary>
    public long SlotsIn(int shard)
    {
        if ((uint)shard >= (uint)Shards) throw new ArgumentOutOfRangeException(nameof(shard), shard, $"shard outside [0, {Shards})");
        return (Rows - shard + Shards - 1) / Shards;
    }

    /// <summary>
    /// Splits one table's CSR request into one request per shard. Every shard receives all B bags
    /// (empty ones included), so the caller sums the B x D partial results without any mapping back.
    /// Two passes (count, then fill exact-size arrays): the only allocations are S x (ids, offsets,
    /// weights) arrays, which the messages own; nothing is allocated per id.
    /// </summary>
    public PooledLookupRequest[] Split(ReadOnlySpan<long> ids, ReadOnlySpan<int> offsets, ReadOnlySpan<float> weights)
    {
        ValidateRequest(ids, offsets, weights);
        int bags = offsets.Length - 1;
        Span<int> counts = Shards <= 256 ? stackalloc int[Shards] : new int[Shards];
        CountPerShard(ids, counts);

        var shardIds = new long[Shards][];
        var shardOffsets = new int[Shards][];
        var shardWeights = weights.IsEmpty ? null : new float[Shards][];
        for (int s = 0; s < Shards; s++)
        {
            shardIds[s] = new long[counts[s]];
            shardOffsets[s] = new int[bags + 1];
            if (shardWeights != null) shardWeights[s] = new float[counts[s]];
        }

        Span<int> cursor = counts; // reused: counts are no longer needed once the arrays exist
        cursor.Clear();
        for (int b = 0; b < bags; b++)
        {
            for (int j = offsets[b]; j < offsets[b + 1]; j++)
            {
                long id = ids[j];
                int s = ShardOf(id);
                int at = cursor[s]++;
                shardIds[s][at] = id;
                if (shardWeights != null) shardWeights[s][at] = weights[j];
            }
            for (int s = 0; s < Shards; s++) shardOffsets[s][b + 1] = cursor[s];
        }

        var requests = new PooledLookupRequest[Shards];
        for (int s = 0; s < Shards; s++)
        {
            requests[s] = new PooledLookupRequest { Ids = shardIds[s], Offsets = shardOffsets[s], Weights = shardWeights?[s] };
        }
        return requests;
    }

    /// <summary>counts[s] = number of ids owned by shard s. Ids must already be validated.</summary>
    public void CountPerShard(ReadOnlySpan<long> ids, Span<int> counts)
    {
        if (counts.Length != Shards) throw new ArgumentException($"counts has {counts.Length} entries for {Shards} shards", nameof(counts));
        counts.Clear();
        foreach (long id in ids) counts[ShardOf(id)]++;
    }

    /// <summary>Checks a whole-table request; the message names the field and position that is wrong.</summary>
    public void ValidateRequest(ReadOnlySpan<long> ids, ReadOnlySpan<int> offsets, ReadOnlySpan<float> weights)
    {
        RequestValidation.ValidateCsr(ids.Length, offsets, weights);
        for (int j = 0; j < ids.Length; j++)
        {
            if ((ulong)ids[j] >= (ulong)Rows) RequestValidation.ThrowIdOutOfRange(j, ids[j], Rows);
        }
    }
}
