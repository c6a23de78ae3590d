using System.Buffers;
using Microsoft.Extensions.Logging;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Serving;
using Recsys.EmbeddingGrains.Storage;

namespace Recsys.EmbeddingGrains.Loading;

/// <summary>
/// Streams a shard's rows out of the model's memory-mapped safetensors into FASTER (and the flat
/// array when resident), quantizing each row to the table's format on the way. Memory is bounded
/// by one chunk of fp32 rows plus FASTER's in-memory log: a 4 GiB table never sits in memory twice.
/// </summary>
internal static class ShardLoader
{
    private const int ChunkRows = 1024;

    public static void Load(EmbeddingShard shard, SafeTensorsFile weights, string tensorName, ShardLoadProgress.Entry progress, ILogger logger, string shardKey, CancellationToken cancellation)
    {
        SafeTensorInfo info = weights.Get(tensorName);
        long rows = shard.Map.Rows;
        int dim = shard.Dim;
        if (info.Shape.Length != 2 || info.Shape[0] != rows || info.Shape[1] != dim)
        {
            throw new ModelFileException(weights.Path, $"tensor '{tensorName}'", $"shape is [{string.Join(", ", info.Shape)}], model.json declares [{rows}, {dim}]");
        }
        float[] chunk = ArrayPool<float>.Shared.Rent(ChunkRows * dim);
        byte[] encoded = ArrayPool<byte>.Shared.Rent(shard.RowBytes);
        RowSession session = shard.Store.RentSession();
        try
        {
            long slots = shard.Slots;
            long step = Math.Max(1, slots / 10);
            long nextReport = step;
            for (long first = 0; first < slots; first += ChunkRows)
            {
                cancellation.ThrowIfCancellationRequested();
                int n = (int)Math.Min(ChunkRows, slots - first);
                for (int r = 0; r < n; r++)
                {
                    // Rows of a shard are strided by S in the table, so each is read where it lies in the map.
                    long global = shard.Map.GlobalId(shard.Shard, first + r);
                    weights.ReadFloats(info, global * dim, chunk.AsSpan(r * dim, dim));
                }
                Span<byte> row = encoded.AsSpan(0, shard.RowBytes);
                for (int r = 0; r < n; r++)
                {
                    RowCodec.Encode(chunk.AsSpan(r * dim, dim), shard.Format, row);
                    shard.WriteRow(session, first + r, row);
                }
                long loaded = first + n;
                progress.Set(loaded);
                if (loaded >= nextReport || loaded == slots)
                {
                    logger.LogInformation("Shard {Shard}: loaded {Loaded}/{Total} rows ({Percent}%)", shardKey, loaded, slots, loaded * 100 / slots);
                    nextReport += step;
                }
            }
        }
        finally
        {
            shard.Store.ReturnSession(session);
            ArrayPool<float>.Shared.Return(chunk);
            ArrayPool<byte>.Shared.Return(encoded);
        }
    }
}
