namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// An in-memory table of encoded rows in native memory: tables exceed 2 GiB, which no
/// managed array or span can address, and native memory can be advised for huge pages.
/// </summary>
public sealed unsafe class EmbeddingTable : IDisposable
{
    private readonly TableMemory _memory;

    /// <summary>An all-zero table; a loader fills it row by row through <see cref="Row"/>.</summary>
    public EmbeddingTable(long rows, int dim, RowFormat format)
    {
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows must be >= 0");
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "dim must be > 0");
        Rows = rows;
        Dim = dim;
        Format = format;
        RowBytes = RowLayout.RowBytes(format, dim);
        _memory = new TableMemory((nuint)(rows * RowBytes));
    }

    public long Rows { get; }
    public int Dim { get; }
    public RowFormat Format { get; }
    public int RowBytes { get; }
    public long SizeBytes => Rows * RowBytes;

    public byte* Base => _memory.Pointer != null ? _memory.Pointer : throw new ObjectDisposedException(nameof(EmbeddingTable));

    /// <summary>True when the rows live in memory advised for 2 MiB transparent huge pages.</summary>
    public bool HugePagesAdvised => _memory.HugePagesAdvised;

    public Span<byte> Row(long index)
    {
        if ((ulong)index >= (ulong)Rows) throw new ArgumentOutOfRangeException(nameof(index), index, $"row index outside [0, {Rows})");
        return new Span<byte>(Base + index * RowBytes, RowBytes);
    }

    /// <summary>Builds a table from fp32 rows (rows x dim, row-major), encoding each row.</summary>
    public static EmbeddingTable FromFloats(ReadOnlySpan<float> values, long rows, int dim, RowFormat format)
    {
        if (values.Length != rows * dim) throw new ArgumentException($"{values.Length} values given for {rows} x {dim}", nameof(values));
        var table = new EmbeddingTable(rows, dim, format);
        for (long r = 0; r < rows; r++) RowCodec.Encode(values.Slice((int)(r * dim), dim), format, table.Row(r));
        return table;
    }

    public void Dispose() => _memory.Dispose();
}
