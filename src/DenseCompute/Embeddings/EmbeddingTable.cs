using System.Runtime.InteropServices;

namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// An in-memory table of encoded rows in native memory: tables exceed 2 GiB, which no
/// managed array or span can address, and native memory can be advised for huge pages.
/// </summary>
public sealed unsafe class EmbeddingTable : IDisposable
{
    private byte* _base;

    public EmbeddingTable(long rows, int dim, RowFormat format)
    {
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows must be >= 0");
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "dim must be > 0");
        Rows = rows;
        Dim = dim;
        Format = format;
        RowBytes = RowLayout.RowBytes(format, dim);
        nuint bytes = (nuint)Math.Max(1, rows * RowBytes);
        _base = (byte*)NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(_base, bytes);
    }

    public long Rows { get; }
    public int Dim { get; }
    public RowFormat Format { get; }
    public int RowBytes { get; }
    public long SizeBytes => Rows * RowBytes;

    public byte* Base => _base != null ? _base : throw new ObjectDisposedException(nameof(EmbeddingTable));

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

    public void Dispose()
    {
        if (_base != null)
        {
            NativeMemory.AlignedFree(_base);
            _base = null;
        }
    }
}
