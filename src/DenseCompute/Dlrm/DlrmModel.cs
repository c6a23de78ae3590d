using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Dlrm;

/// <summary>
/// A whole DLRM in one process: the dense graph plus every table resident in its row format.
/// `recsys rank` and the tests use it; the server keeps the tables on shard grains instead and
/// only shares <see cref="DlrmDense"/>.
/// </summary>
public sealed class DlrmModel : IDisposable
{
    // Rows are encoded through this many floats at a time, so loading a table needs the
    // table itself plus a fixed buffer, never a second fp32 copy of it.
    private const int LoadChunkFloats = 1 << 16;

    private readonly EmbeddingTable[] _tables;
    private readonly int[] _pooledOffsets;

    private DlrmModel(DlrmSpec spec, DlrmDense dense, EmbeddingTable[] tables)
    {
        Spec = spec;
        Dense = dense;
        _tables = tables;
        _pooledOffsets = new int[tables.Length + 1];
        for (int t = 0; t < tables.Length; t++) _pooledOffsets[t + 1] = _pooledOffsets[t] + spec.Tables[t].Dim;
    }

    public DlrmSpec Spec { get; }
    public DlrmDense Dense { get; }
    public IReadOnlyList<EmbeddingTable> Tables => _tables;

    /// <summary>Loads models/&lt;name&gt;/&lt;version&gt;/ (model.json and the weights file it names).</summary>
    public static DlrmModel Load(string versionDirectory)
    {
        ModelSpec model = ModelSpec.Load(Path.Combine(versionDirectory, "model.json"));
        DlrmSpec spec = model.RequireDlrm();
        return Load(spec, Path.Combine(versionDirectory, spec.WeightsFile));
    }

    /// <summary>
    /// Loads the weights for an already parsed spec. Tables are read as float tensors
    /// (F32/F16/BF16, rows x dim) and encoded into the table's storage, or — for int8/int4
    /// storage — taken as FBGEMM-prepacked U8 rows (rows x row bytes) unchanged.
    /// </summary>
    public static DlrmModel Load(DlrmSpec spec, string weightsPath)
    {
        using SafeTensorsFile weights = SafeTensorsFile.Open(weightsPath);
        DlrmDense dense = DlrmDense.Load(spec, weights);
        var tables = new EmbeddingTable[spec.Tables.Length];
        try
        {
            for (int t = 0; t < tables.Length; t++) tables[t] = LoadTable(spec.Tables[t], weights, DlrmSpec.EmbeddingWeightName(t));
        }
        catch
        {
            foreach (EmbeddingTable? table in tables) table?.Dispose();
            throw;
        }
        return new DlrmModel(spec, dense, tables);
    }

    private static unsafe EmbeddingTable LoadTable(TableSpec spec, SafeTensorsFile weights, string name)
    {
        SafeTensorInfo info = weights.Get(name);
        int rowBytes = spec.RowBytes;
        bool prepacked = info.DType == SafeTensorDType.U8 && spec.Storage is RowFormat.Int8 or RowFormat.Int4;
        long[] expected = prepacked ? [spec.Rows, rowBytes] : [spec.Rows, spec.Dim];
        if (!info.Shape.SequenceEqual(expected))
        {
            string what = prepacked ? $"{RowLayout.Name(spec.Storage)} prepacked rows of {rowBytes} bytes" : $"table '{spec.Name}' (rows x dim)";
            throw new ModelFileException(weights.Path, $"tensor '{name}'", $"shape is [{string.Join(", ", info.Shape)}], model.json implies [{string.Join(", ", expected)}] for {what}");
        }
        if (!prepacked && info.DType is not (SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16))
        {
            throw new ModelFileException(weights.Path, $"tensor '{name}'", $"dtype {info.DType} cannot hold {RowLayout.Name(spec.Storage)} rows of table '{spec.Name}' (F32, F16, BF16, or U8 prepacked for int8/int4)");
        }
        var table = new EmbeddingTable(spec.Rows, spec.Dim, spec.Storage);
        try
        {
            if (prepacked)
            {
                Buffer.MemoryCopy(weights.Pointer(info), table.Base, table.SizeBytes, table.SizeBytes);
                return table;
            }
            int rowsPerChunk = Math.Max(1, LoadChunkFloats / spec.Dim);
            float[] chunk = ArrayPool<float>.Shared.Rent(rowsPerChunk * spec.Dim);
            try
            {
                for (long r = 0; r < spec.Rows; r += rowsPerChunk)
                {
                    int n = (int)Math.Min(rowsPerChunk, spec.Rows - r);
                    Span<float> values = chunk.AsSpan(0, n * spec.Dim);
                    weights.ReadFloats(info, r * spec.Dim, values);
                    for (int i = 0; i < n; i++)
                    {
                        RowCodec.Encode(values.Slice(i * spec.Dim, spec.Dim), spec.Storage, table.Row(r + i));
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(chunk);
            }
            return table;
        }
        catch
        {
            table.Dispose();
            throw;
        }
    }

    /// <summary>Scores a batch: batch x <see cref="DlrmSpec.Events"/> probabilities, row-major.</summary>
    public float[] Score(RankBatch batch)
    {
        var scores = new float[batch.Batch * Spec.Events];
        Score(batch, scores);
        return scores;
    }

    public void Score(RankBatch batch, Span<float> scores)
    {
        CheckShape(batch);
        if (scores.Length < batch.Batch * Spec.Events) throw new ArgumentException($"scores holds {scores.Length} floats, needs {batch.Batch} x {Spec.Events}", nameof(scores));
        int bottomLength = batch.Batch * Spec.BottomOutput;
        int pooledLength = batch.Batch * _pooledOffsets[^1];
        float[] bottom = ArrayPool<float>.Shared.Rent(Math.Max(1, bottomLength));
        // 16 floats of slack to start the pooled block on a cache line: an array's data starts 16 bytes
        // into one, and then every 64-byte store of a pooled row splits across two lines (that cost the
        // bag kernel about 1.25-2x at 1-20 ids per bag). A GC that moved the array before the kernels pin
        // it would only cost that alignment again, never correctness.
        float[] pooled = ArrayPool<float>.Shared.Rent(pooledLength + 16);
        int aligned = LineOffset(pooled);
        try
        {
            Dense.Bottom(batch.Dense, batch.Batch, bottom.AsSpan(0, bottomLength));
            Span<float> pooledBlock = pooled.AsSpan(aligned, pooledLength);
            Pool(batch, pooledBlock);
            Dense.Top(bottom.AsSpan(0, bottomLength), pooledBlock, batch.Batch, scores[..(batch.Batch * Spec.Events)]);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(bottom);
            ArrayPool<float>.Shared.Return(pooled);
        }
    }

    /// <summary>Floats to skip from the start of <paramref name="array"/> to reach a 64-byte boundary.</summary>
    private static unsafe int LineOffset(float[] array)
    {
        nuint start = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (int)((64 - (start & 63)) & 63) / sizeof(float);
    }

    /// <summary>Pools every table into the layout <see cref="Interaction.Forward"/> reads: per table a batch x dim block, in table order.</summary>
    public void Pool(RankBatch batch, Span<float> pooled)
    {
        CheckShape(batch);
        for (int t = 0; t < _tables.Length; t++)
        {
            SparseFeature f = batch.Sparse[t];
            int dim = Spec.Tables[t].Dim;
            Span<float> block = pooled.Slice(batch.Batch * _pooledOffsets[t], batch.Batch * dim);
            EmbeddingBag.Pool(_tables[t], f.Ids, f.Offsets, f.Weights, Spec.Tables[t].Pooling, block);
        }
    }

    private void CheckShape(RankBatch batch)
    {
        if (batch.Dense.Length != batch.Batch * Spec.DenseFeatures) throw new ArgumentException($"dense has {batch.Dense.Length} values, the model needs {batch.Batch} x {Spec.DenseFeatures}", nameof(batch));
        if (batch.Sparse.Length != _tables.Length) throw new ArgumentException($"{batch.Sparse.Length} sparse features for {_tables.Length} tables", nameof(batch));
        for (int t = 0; t < _tables.Length; t++)
        {
            if (batch.Sparse[t].Bags != batch.Batch) throw new ArgumentException($"table '{Spec.Tables[t].Name}' has {batch.Sparse[t].Bags} bags for a batch of {batch.Batch}", nameof(batch));
        }
    }

    public void Dispose()
    {
        foreach (EmbeddingTable table in _tables) table.Dispose();
    }
}
