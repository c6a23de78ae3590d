using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Recsys.DenseCompute.Tensors;

/// <summary>
/// A row-major Rows x Cols float matrix over a pinned, 64-byte aligned buffer rented from a
/// <see cref="TensorPool"/>. Dispose hands the tensor back; the same instance and buffer are
/// reused by a later Rent, so steady-state forward passes allocate nothing.
/// </summary>
/// <remarks>Contents are unspecified after Rent; a layer's Forward overwrites them.</remarks>
public sealed unsafe class Tensor : IDisposable
{
    private readonly TensorPool _pool;
    private readonly float[] _buffer;
    private readonly float* _data;
    private bool _rented;

    internal Tensor(TensorPool pool, float[] buffer, int capacity)
    {
        _pool = pool;
        _buffer = buffer;
        nuint start = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        _data = (float*)((start + 63) & ~(nuint)63);
        Capacity = capacity;
    }

    public int Rows { get; private set; }
    public int Cols { get; private set; }
    public (int Rows, int Cols) Shape => (Rows, Cols);
    public int Length => Rows * Cols;

    /// <summary>Floats the buffer holds; <see cref="Reshape"/> may grow the shape up to it.</summary>
    public int Capacity { get; }

    public Span<float> Span
    {
        get
        {
            ThrowIfReturned();
            return new Span<float>(_data, Length);
        }
    }

    /// <summary>Row <paramref name="row"/> as a span of Cols floats.</summary>
    public Span<float> Row(int row)
    {
        ThrowIfReturned();
        if ((uint)row >= (uint)Rows) ThrowRow(row);
        return new Span<float>(_data + ((long)row * Cols), Cols);
    }

    /// <summary>Views the same buffer with a new shape (e.g. a ping-pong buffer between layers of different widths).</summary>
    public void Reshape(int rows, int cols)
    {
        ThrowIfReturned();
        TensorPool.CheckShape(rows, cols);
        if ((long)rows * cols > Capacity) throw new ArgumentException($"shape {rows} x {cols} needs {(long)rows * cols} floats, tensor holds {Capacity}", nameof(rows));
        Rows = rows;
        Cols = cols;
    }

    public void Dispose()
    {
        if (!_rented) return;
        _rented = false;
        _pool.Return(this);
    }

    internal void OnRent(int rows, int cols)
    {
        _rented = true;
        Rows = rows;
        Cols = cols;
    }

    /// <summary>Keeps the pinned array reachable for as long as the tensor is.</summary>
    internal float[] Buffer => _buffer;

    private void ThrowIfReturned()
    {
        if (!_rented) ThrowReturned();
    }

    [DoesNotReturn]
    private static void ThrowReturned() => throw new ObjectDisposedException(nameof(Tensor), "tensor was returned to its pool");

    [DoesNotReturn]
    private void ThrowRow(int row) => throw new ArgumentOutOfRangeException(nameof(row), row, $"tensor has {Rows} rows");
}
