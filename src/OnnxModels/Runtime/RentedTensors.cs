using System.Buffers;
using Microsoft.ML.OnnxRuntime;

namespace Recsys.OnnxModels.Runtime;

/// <summary>
/// The input tensors of one ONNX Runtime run, in arrays rented from the shared pools and handed to
/// ONNX Runtime pinned, without a copy. A served batch stacks its requests into one tensor per input:
/// for images or clips that is hundreds of KB, so a fresh array per batch lands on the large-object
/// heap and collecting it takes a gen-2 GC, which pauses the ranking threads too. Rented, the steady
/// state allocates none of them. Dispose after the run: that unpins the arrays and returns them.
/// </summary>
public sealed class RentedTensors : IDisposable
{
    private readonly List<OrtValue> _values = new(2);
    private readonly List<Array> _arrays = new(2);

    /// <summary>The tensors in the order they were added, for <c>InferenceSession.Run</c>.</summary>
    public IReadOnlyList<OrtValue> Values => _values;

    /// <summary>
    /// Adds a tensor of <paramref name="shape"/> and returns its elements to fill: exactly the
    /// shape's element count (a rented array is often longer; ONNX Runtime sees only this prefix,
    /// and the caller overwrites all of it, so nothing of the array's last user shows through).
    /// </summary>
    public Span<T> Add<T>(long[] shape) where T : unmanaged
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(long) && typeof(T) != typeof(byte))
        {
            throw new NotSupportedException($"{typeof(T).Name} tensors are not served (FP32, INT64 or UINT8)");
        }
        int count = checked((int)ElementCount(shape));
        T[] array = ArrayPool<T>.Shared.Rent(count);
        _arrays.Add(array);
        _values.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, array.AsMemory(0, count), shape));
        return array.AsSpan(0, count);
    }

    private static long ElementCount(long[] shape)
    {
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"shape [{string.Join(", ", shape)}] has a negative dimension", nameof(shape));
            n = checked(n * d);
        }
        return n;
    }

    public void Dispose()
    {
        // Values first: each holds its array pinned until disposed, and a returned array may be rented at once.
        foreach (OrtValue value in _values) value.Dispose();
        _values.Clear();
        foreach (Array array in _arrays)
        {
            switch (array)
            {
                case float[] f: ArrayPool<float>.Shared.Return(f); break;
                case long[] l: ArrayPool<long>.Shared.Return(l); break;
                case byte[] b: ArrayPool<byte>.Shared.Return(b); break;
            }
        }
        _arrays.Clear();
    }
}
