using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using FASTER.core;
using Recsys.DenseCompute.Embeddings;
using Recsys.EmbeddingGrains.Cache;
using Recsys.EmbeddingGrains.Sharding;
using Recsys.EmbeddingGrains.Storage;

namespace Recsys.EmbeddingGrains.Serving;

/// <summary>
/// One shard of one table, in-process: its FASTER store and the row cache in front of it. The
/// grain hosts one; benchmarks drive one directly. Lookups take global ids (validated to belong to
/// this shard) and write Bags x Dim partial sums. One caller at a time (the grain's turn): the cache
/// has a single writer, so lookups and upserts are serialized by the owner.
/// </summary>
public sealed class EmbeddingShard : IDisposable
{
    private readonly ShardStore _store;
    private readonly EmbeddingTable? _resident;
    private readonly HotRowCache? _hot;
    private readonly ConcurrentBag<float[]> _accumulators = [];
    private long _lookups, _hits, _misses, _diskReads;
    private bool _dirty;

    internal EmbeddingShard(ShardMap map, int shard, RowFormat format, int dim, ShardMemoryPlan plan, string directory)
    {
        Map = map;
        Shard = shard;
        Slots = map.SlotsIn(shard);
        Format = format;
        Dim = dim;
        RowBytes = RowLayout.RowBytes(format, dim);
        Plan = plan;
        _store = new ShardStore(directory, plan.Store, format, dim);
        if (plan.Resident) _resident = new EmbeddingTable(Slots, dim, format);
        else _hot = new HotRowCache(plan.CacheRows, RowBytes);
    }

    /// <summary>Opens (or creates) the shard's store under <paramref name="directory"/> with a plan made from the grant.</summary>
    public static EmbeddingShard Open(ShardMap map, int shard, RowFormat format, int dim, long grantBytes, string directory) =>
        new(map, shard, format, dim, ShardMemoryPlan.For(map.SlotsIn(shard), RowLayout.RowBytes(format, dim), grantBytes), directory);

    public ShardMap Map { get; }
    public int Shard { get; }
    public long Slots { get; }
    public RowFormat Format { get; }
    public int Dim { get; }
    public int RowBytes { get; }
    public ShardMemoryPlan Plan { get; }
    public bool IsResident => _resident != null;
    public long ResidentRows => _resident != null ? Slots : _hot!.Resident;
    public long Lookups => Volatile.Read(ref _lookups);
    public long CacheHits => Volatile.Read(ref _hits);
    public long CacheMisses => Volatile.Read(ref _misses);

    /// <summary>Misses FASTER could not serve from its in-memory log (they went to disk).</summary>
    public long DiskReads => Volatile.Read(ref _diskReads);
    public bool HasUncheckpointedWrites => _dirty;
    internal ShardStore Store => _store;

    /// <summary>
    /// Pools bags of rows: output[b * Dim ..] = sum over j in bag b of weights[j] x row(ids[j]).
    /// Completes synchronously unless a row has to come from disk.
    /// </summary>
    public ValueTask LookupAsync(long[] ids, int[] offsets, float[]? weights, float[] output)
    {
        Validate(ids, offsets, weights, output);
        int bags = offsets.Length - 1;
        Interlocked.Add(ref _lookups, ids.Length);
        if (_resident != null)
        {
            Interlocked.Add(ref _hits, ids.Length);
            PoolResident(ids, offsets, weights, output);
            return ValueTask.CompletedTask;
        }
        return PoolThroughCacheAsync(ids, offsets, weights, output, bags);
    }

    private void Validate(long[] ids, int[] offsets, float[]? weights, float[] output)
    {
        RequestValidation.ValidateCsr(ids.Length, offsets, weights);
        long rows = Map.Rows;
        int shards = Map.Shards;
        if (System.Numerics.BitOperations.IsPow2(shards))
        {
            // A mask instead of a 64-bit division per id (shard counts are usually powers of two).
            long mask = shards - 1;
            for (int j = 0; j < ids.Length; j++)
            {
                long id = ids[j];
                if ((ulong)id >= (ulong)rows) RequestValidation.ThrowIdOutOfRange(j, id, rows);
                if ((id & mask) != Shard) ThrowWrongShard(j, id);
            }
        }
        else
        {
            for (int j = 0; j < ids.Length; j++)
            {
                long id = ids[j];
                if ((ulong)id >= (ulong)rows) RequestValidation.ThrowIdOutOfRange(j, id, rows);
                if (id % shards != Shard) ThrowWrongShard(j, id);
            }
        }
        int needed = (offsets.Length - 1) * Dim;
        if (output.Length < needed) throw new ArgumentException($"output holds {output.Length} floats, {offsets.Length - 1} bags x {Dim} need {needed}", nameof(output));
    }

    private void ThrowWrongShard(int position, long id) =>
        throw new ArgumentException($"Ids[{position}] = {id} belongs to shard {id % Map.Shards} (id mod {Map.Shards}), not shard {Shard}", "Ids");

    private unsafe void PoolResident(long[] ids, int[] offsets, float[]? weights, float[] output)
    {
        if (Map.Shards == 1)
        {
            EmbeddingBag.Pool(_resident!.Base, Slots, Dim, Format, ids, offsets, weights, Pooling.Sum, output);
            return;
        }
        long[] slots = ArrayPool<long>.Shared.Rent(ids.Length);
        try
        {
            int shards = Map.Shards;
            if (System.Numerics.BitOperations.IsPow2(shards))
            {
                int shift = System.Numerics.BitOperations.Log2((uint)shards);
                for (int j = 0; j < ids.Length; j++) slots[j] = ids[j] >> shift;
            }
            else
            {
                for (int j = 0; j < ids.Length; j++) slots[j] = ids[j] / shards;
            }
            EmbeddingBag.Pool(_resident!.Base, Slots, Dim, Format, slots.AsSpan(0, ids.Length), offsets, weights, Pooling.Sum, output);
        }
        finally
        {
            ArrayPool<long>.Shared.Return(slots);
        }
    }

    private async ValueTask PoolThroughCacheAsync(long[] ids, int[] offsets, float[]? weights, float[] output, int bags)
    {
        int length = bags * Dim;
        float[] acc = RentAccumulator(length);
        RowSession session = _store.RentSession();
        int missing;
        try
        {
            (int pending, missing) = IssueReads(session, ids, offsets, weights, acc);
            if (pending > 0)
            {
                Interlocked.Add(ref _diskReads, pending);
                // Disk reads complete here, their callbacks pooling into the same pinned accumulator.
                await session.Session.CompletePendingAsync().ConfigureAwait(false);
                missing += session.Functions.TakeMissing();
            }
        }
        catch
        {
            // Reads may still be in flight into acc and the reserved cache ways: abandon the session
            // and the accumulator instead of pooling them, and never serve the half-filled ways.
            _hot!.AbortFills();
            throw;
        }
        _store.ReturnSession(session);
        if (missing > 0)
        {
            _hot!.AbortFills();
            _accumulators.Add(acc);
            throw new InvalidOperationException($"{missing} rows of shard {Shard} are missing from its store {_store.Directory} (the store is incomplete; delete it to reload)");
        }
        _hot!.CommitFills();
        acc.AsSpan(0, length).CopyTo(output);
        _accumulators.Add(acc);
    }

    /// <summary>Serves hits from the cache and starts FASTER reads for misses; returns how many are pending.</summary>
    private unsafe (int Pending, int Missing) IssueReads(RowSession session, long[] ids, int[] offsets, float[]? weights, float[] acc)
    {
        HotRowCache hot = _hot!;
        int shards = Map.Shards, dim = Dim, rowBytes = RowBytes, bags = offsets.Length - 1;
        RowFormat format = Format;
        int pending = 0, missing = 0;
        long hits = 0, misses = 0;
        // acc is a pinned array (see RentAccumulator): its address stays valid for pending reads.
        float* accBase = (float*)Unsafe.AsPointer(ref acc[0]);
        new Span<float>(accBase, bags * dim).Clear();
        for (int b = 0; b < bags; b++)
        {
            float* bagAcc = accBase + (long)b * dim;
            for (int j = offsets[b]; j < offsets[b + 1]; j++)
            {
                long slot = ids[j] / shards;
                float w = weights is null ? 1f : weights[j];
                byte* row = hot.TryGet(slot);
                if (row != null)
                {
                    hits++;
                    RowCodec.Accumulate(new ReadOnlySpan<byte>(row, rowBytes), format, dim, w, new Span<float>(bagAcc, dim));
                    continue;
                }
                misses++;
                var input = new RowReadInput { Accumulator = bagAcc, Weight = w, AdmitTo = hot.TryAdmit(slot) };
                Status status = ShardStore.Read(session, slot, ref input);
                if (status.IsPending) pending++;
                else if (!status.Found) missing++;
            }
        }
        Interlocked.Add(ref _hits, hits);
        Interlocked.Add(ref _misses, misses);
        return (pending, missing);
    }

    private float[] RentAccumulator(int length)
    {
        int size = Math.Max(64, length);
        if (_accumulators.TryTake(out float[]? acc) && acc.Length >= size) return acc;
        // Pinned so FASTER's pending reads may hold raw pointers into it across awaits.
        return GC.AllocateUninitializedArray<float>((int)Math.Min(int.MaxValue, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)size)), pinned: true);
    }

    /// <summary>Encodes fp32 rows (ids.Length x Dim) and writes them to FASTER and the cache.</summary>
    public void Upsert(ReadOnlySpan<long> ids, ReadOnlySpan<float> values)
    {
        if (values.Length != (long)ids.Length * Dim)
        {
            throw new ArgumentException($"Values has {values.Length} floats, {ids.Length} rows x {Dim} need {(long)ids.Length * Dim}", "Values");
        }
        for (int j = 0; j < ids.Length; j++)
        {
            long id = ids[j];
            if ((ulong)id >= (ulong)Map.Rows) RequestValidation.ThrowIdOutOfRange(j, id, Map.Rows);
            if (id % Map.Shards != Shard) ThrowWrongShard(j, id);
        }
        byte[] encoded = ArrayPool<byte>.Shared.Rent(RowBytes);
        RowSession session = _store.RentSession();
        try
        {
            Span<byte> row = encoded.AsSpan(0, RowBytes);
            for (int j = 0; j < ids.Length; j++)
            {
                long slot = ids[j] / Map.Shards;
                RowCodec.Encode(values.Slice(j * Dim, Dim), Format, row);
                WriteRow(session, slot, row);
            }
            _dirty = true;
        }
        finally
        {
            _store.ReturnSession(session);
            ArrayPool<byte>.Shared.Return(encoded);
        }
    }

    /// <summary>FASTER first (the durable home), then the copy lookups read.</summary>
    internal void WriteRow(RowSession session, long slot, ReadOnlySpan<byte> row)
    {
        ShardStore.Upsert(session, slot, row);
        if (_resident != null) row.CopyTo(_resident.Row(slot));
        else _hot!.Update(slot, row);
    }

    /// <summary>After recovery: the flat array is rebuilt from FASTER's log (a cache starts cold).</summary>
    internal void WarmFromStore()
    {
        if (_resident == null) return;
        EmbeddingTable table = _resident;
        _store.Scan((slot, row) =>
        {
            if ((ulong)slot < (ulong)table.Rows) row.CopyTo(table.Row(slot));
        });
    }

    public async Task CheckpointAsync()
    {
        _dirty = false;
        try
        {
            await _store.CheckpointAsync().ConfigureAwait(false);
        }
        catch
        {
            _dirty = true;
            throw;
        }
    }

    internal Task RecoverAsync() => _store.RecoverAsync();

    public void Dispose()
    {
        _store.Dispose();
        _resident?.Dispose();
        _hot?.Dispose();
    }
}
