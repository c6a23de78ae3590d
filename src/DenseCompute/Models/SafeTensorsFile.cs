using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace Recsys.DenseCompute.Models;

/// <summary>Element types of the safetensors format that Recsys reads.</summary>
public enum SafeTensorDType
{
    F32,
    F16,
    BF16,
    I8,
    U8,
}

/// <summary>One tensor's place in a safetensors file: data starts at <see cref="Offset"/> bytes from the file start.</summary>
public sealed record SafeTensorInfo(string Name, SafeTensorDType DType, long[] Shape, long Offset, long Length)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public static int ElementSize(SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 => 2,
        _ => 1,
    };
}

/// <summary>
/// A memory-mapped safetensors file (8-byte little-endian header length, JSON header, data).
/// The header is checked against the file size before any tensor is touched, so a truncated
/// or lying file fails at open with the tensor named, not later with a wild read.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    // The reference implementation refuses headers over 100 MB; a bigger length is a corrupt prefix.
    private const long MaxHeaderBytes = 100_000_000;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    private SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr, Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        Tensors = tensors;
        Metadata = metadata;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static SafeTensorsFile Open(string path)
    {
        var file = new FileInfo(path);
        if (!file.Exists) throw new ModelFileException(path, "file", "does not exist");
        long size = file.Length;
        if (size < 8) throw new ModelFileException(path, "header", $"file is {size} bytes, too short for the 8-byte header length");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* ptr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
            ptr += view.PointerOffset;
            long headerLength = *(long*)ptr;
            if (headerLength <= 0 || headerLength > size - 8 || headerLength > MaxHeaderBytes)
            {
                throw new ModelFileException(path, "header", $"header length {headerLength} does not fit a {size}-byte file (truncated or not safetensors)");
            }
            var (tensors, metadata) = ParseHeader(path, new ReadOnlySpan<byte>(ptr + 8, (int)headerLength), 8 + headerLength, size);
            return new SafeTensorsFile(path, map, view, ptr, tensors, metadata);
        }
        catch
        {
            if (view != null)
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                view.Dispose();
            }
            map.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, ReadOnlySpan<byte> json, long dataStart, long fileSize)
    {
        var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new ModelFileException(path, "header", $"header is not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelFileException(path, "header", "header must be a JSON object");
            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind == JsonValueKind.Object)
                    {
                        foreach (JsonProperty m in p.Value.EnumerateObject()) metadata[m.Name] = m.Value.ToString();
                    }
                    continue;
                }
                tensors[p.Name] = ParseTensor(path, p.Name, p.Value, dataStart, fileSize);
            }
        }
        return (tensors, metadata);
    }

    private static SafeTensorInfo ParseTensor(string path, string name, JsonElement e, long dataStart, long fileSize)
    {
        string field = $"tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object) throw new ModelFileException(path, field, "entry must be an object");
        if (!e.TryGetProperty("dtype", out JsonElement dt) || dt.ValueKind != JsonValueKind.String) throw new ModelFileException(path, field + ".dtype", "missing");
        SafeTensorDType dtype = dt.GetString() switch
        {
            "F32" => SafeTensorDType.F32,
            "F16" => SafeTensorDType.F16,
            "BF16" => SafeTensorDType.BF16,
            "I8" => SafeTensorDType.I8,
            "U8" => SafeTensorDType.U8,
            var other => throw new ModelFileException(path, field + ".dtype", $"'{other}' is not supported (F32, F16, BF16, I8, U8)"),
        };
        if (!e.TryGetProperty("shape", out JsonElement sh) || sh.ValueKind != JsonValueKind.Array) throw new ModelFileException(path, field + ".shape", "missing");
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (JsonElement d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0) throw new ModelFileException(path, field + ".shape", $"dimension {i} is not a non-negative integer");
            shape[i++] = v;
        }
        if (!e.TryGetProperty("data_offsets", out JsonElement off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
        {
            throw new ModelFileException(path, field + ".data_offsets", "must be [begin, end]");
        }
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number
            || !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end))
        {
            throw new ModelFileException(path, field + ".data_offsets", "must be two integers [begin, end]");
        }
        var info = new SafeTensorInfo(name, dtype, shape, dataStart + begin, end - begin);
        if (begin < 0 || end < begin) throw new ModelFileException(path, field + ".data_offsets", $"[{begin}, {end}] is not a valid range");
        if (dataStart + end > fileSize) throw new ModelFileException(path, field + ".data_offsets", $"ends at byte {dataStart + end} but the file has {fileSize} bytes (truncated)");
        long expected = info.ElementCount * SafeTensorInfo.ElementSize(dtype);
        if (expected != info.Length) throw new ModelFileException(path, field, $"shape [{string.Join(", ", shape)}] of {dtype} needs {expected} bytes, data_offsets give {info.Length}");
        return info;
    }

    public SafeTensorInfo Get(string name) =>
        Tensors.TryGetValue(name, out SafeTensorInfo? info) ? info : throw new ModelFileException(Path, $"tensor '{name}'", "missing from the weights file");

    /// <summary>Raw bytes of a tensor, valid while this file is open.</summary>
    public byte* Pointer(SafeTensorInfo info) => (_base != null ? _base : throw new ObjectDisposedException(Path)) + info.Offset;

    /// <summary>Converts <paramref name="count"/> elements starting at element <paramref name="first"/> to fp32.</summary>
    public void ReadFloats(SafeTensorInfo info, long first, Span<float> destination)
    {
        int count = destination.Length;
        if (first < 0 || first + count > info.ElementCount) throw new ArgumentOutOfRangeException(nameof(first), $"elements [{first}, {first + count}) outside tensor '{info.Name}' of {info.ElementCount}");
        byte* p = Pointer(info);
        switch (info.DType)
        {
            case SafeTensorDType.F32:
                new ReadOnlySpan<float>(p + first * 4, count).CopyTo(destination);
                break;
            case SafeTensorDType.F16:
                {
                    var src = new ReadOnlySpan<Half>(p + first * 2, count);
                    for (int i = 0; i < count; i++) destination[i] = (float)src[i];
                    break;
                }
            case SafeTensorDType.BF16:
                {
                    var src = new ReadOnlySpan<ushort>(p + first * 2, count);
                    for (int i = 0; i < count; i++) destination[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
                    break;
                }
            case SafeTensorDType.I8:
                {
                    var src = new ReadOnlySpan<sbyte>(p + first, count);
                    for (int i = 0; i < count; i++) destination[i] = src[i];
                    break;
                }
            case SafeTensorDType.U8:
                {
                    var src = new ReadOnlySpan<byte>(p + first, count);
                    for (int i = 0; i < count; i++) destination[i] = src[i];
                    break;
                }
        }
    }

    /// <summary>The whole tensor as fp32 after checking its shape.</summary>
    public float[] ReadFloats(string name, params long[] expectedShape)
    {
        SafeTensorInfo info = Get(name);
        if (!info.Shape.SequenceEqual(expectedShape))
        {
            throw new ModelFileException(Path, $"tensor '{name}'", $"shape is [{string.Join(", ", info.Shape)}], model.json implies [{string.Join(", ", expectedShape)}]");
        }
        var result = new float[info.ElementCount];
        ReadFloats(info, 0, result);
        return result;
    }

    public void Dispose()
    {
        if (_base != null)
        {
            _base = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _map.Dispose();
        }
    }
}
