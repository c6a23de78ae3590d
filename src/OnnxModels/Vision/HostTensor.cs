using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Recsys.OnnxModels.Vision;

/// <summary>The element types a served graph may take or give: what KServe calls FP32, INT64 and UINT8.</summary>
public enum ElementKind
{
    Float32,
    Int64,
    UInt8,
}

/// <summary>
/// A dense row-major tensor in managed memory: what a request carries into a graph and what comes
/// back out. Dimension 0 is the batch wherever a graph has one, so requests are concatenated and
/// results split along it.
/// </summary>
public sealed class HostTensor
{
    private HostTensor(ElementKind element, long[] shape, Array data)
    {
        long count = ElementCount(shape);
        if (count != data.Length) throw new ArgumentException($"shape [{string.Join(", ", shape)}] holds {count} elements, the data {data.Length}");
        Element = element;
        Shape = shape;
        Data = data;
    }

    public ElementKind Element { get; }
    public long[] Shape { get; }

    /// <summary>float[], long[] or byte[] by <see cref="Element"/>.</summary>
    public Array Data { get; }

    public int Rank => Shape.Length;
    public long Length => Data.Length;

    public static HostTensor Of(float[] data, params long[] shape) => new(ElementKind.Float32, shape, data);
    public static HostTensor Of(long[] data, params long[] shape) => new(ElementKind.Int64, shape, data);
    public static HostTensor Of(byte[] data, params long[] shape) => new(ElementKind.UInt8, shape, data);

    public float[] Floats => Data as float[] ?? throw new InvalidOperationException($"tensor is {Element}, not FP32");
    public long[] Longs => Data as long[] ?? throw new InvalidOperationException($"tensor is {Element}, not INT64");

    public static long ElementCount(ReadOnlySpan<long> shape)
    {
        long n = 1;
        foreach (long d in shape) n = checked(n * d);
        return n;
    }

    /// <summary>Rows [start, start + count) along dimension 0.</summary>
    public HostTensor Rows(long start, long count)
    {
        long row = Rank == 0 ? 1 : ElementCount(Shape.AsSpan(1));
        long[] shape = [.. Shape];
        shape[0] = count;
        Array data = Array.CreateInstance(Data.GetType().GetElementType()!, count * row);
        Array.Copy(Data, start * row, data, 0, count * row);
        return new HostTensor(Element, shape, data);
    }

    /// <summary>Concatenates along dimension 0; every part has the same element type and trailing dimensions.</summary>
    public static HostTensor Concat(IReadOnlyList<HostTensor> parts)
    {
        if (parts.Count == 1) return parts[0];
        HostTensor first = parts[0];
        long rows = 0, total = 0;
        foreach (HostTensor p in parts)
        {
            if (p.Element != first.Element || !p.Shape.AsSpan(1).SequenceEqual(first.Shape.AsSpan(1))) throw new ArgumentException("parts differ in element type or trailing dimensions");
            rows += p.Shape[0];
            total += p.Length;
        }
        Array data = Array.CreateInstance(first.Data.GetType().GetElementType()!, total);
        long at = 0;
        foreach (HostTensor p in parts)
        {
            Array.Copy(p.Data, 0, data, at, p.Length);
            at += p.Length;
        }
        long[] shape = [.. first.Shape];
        shape[0] = rows;
        return new HostTensor(first.Element, shape, data);
    }

    /// <summary>An ORT value over this tensor's array (pinned until the value is disposed, no copy).</summary>
    internal OrtValue ToOrtValue() => Data switch
    {
        float[] f => OrtValue.CreateTensorValueFromMemory(f, Shape),
        long[] l => OrtValue.CreateTensorValueFromMemory(l, Shape),
        byte[] b => OrtValue.CreateTensorValueFromMemory(b, Shape),
        _ => throw new InvalidOperationException(Data.GetType().Name),
    };

    /// <summary>Copies this tensor's elements into <paramref name="destination"/> (a batch being stacked).</summary>
    internal void CopyTo<T>(Span<T> destination) where T : unmanaged => ((T[])Data).CopyTo(destination);

    /// <summary>Copies a graph output out of native memory.</summary>
    internal static HostTensor FromOrtValue(OrtValue value, string name)
    {
        OrtTensorTypeAndShapeInfo info = value.GetTensorTypeAndShape();
        return Copy(value, info.ElementDataType, info.Shape, 0, name);
    }

    /// <summary>
    /// Copies rows [start, start + count) along dimension 0 of a graph output out of native memory:
    /// one request's share of a batched run, without first copying the whole output.
    /// </summary>
    internal static HostTensor FromOrtRows(OrtValue value, string name, long start, long count)
    {
        OrtTensorTypeAndShapeInfo info = value.GetTensorTypeAndShape();
        long[] shape = info.Shape;
        if (shape.Length == 0 || start < 0 || count < 0 || start + count > shape[0])
        {
            throw new InvalidOperationException($"graph output '{name}' {TensorSignature.Describe(shape)} has no rows [{start}, {start + count})");
        }
        long row = ElementCount(shape.AsSpan(1));
        shape[0] = count;
        return Copy(value, info.ElementDataType, shape, checked((int)(start * row)), name);
    }

    private static HostTensor Copy(OrtValue value, TensorElementType type, long[] shape, int from, string name)
    {
        int length = checked((int)ElementCount(shape));
        return type switch
        {
            TensorElementType.Float => Of(value.GetTensorDataAsSpan<float>().Slice(from, length).ToArray(), shape),
            TensorElementType.Int64 => Of(value.GetTensorDataAsSpan<long>().Slice(from, length).ToArray(), shape),
            TensorElementType.UInt8 => Of(value.GetTensorDataAsSpan<byte>().Slice(from, length).ToArray(), shape),
            _ => throw new NotSupportedException($"graph output '{name}' is {type}; served outputs are FP32, INT64 or UINT8"),
        };
    }
}
