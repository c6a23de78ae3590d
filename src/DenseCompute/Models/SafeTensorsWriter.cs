using System.Text;
using System.Text.Json;

namespace Recsys.DenseCompute.Models;

/// <summary>
/// Writes an F32 safetensors file whose tensors are declared up front and then streamed in
/// order, so a multi-GiB embedding table never has to sit in memory whole.
/// </summary>
public sealed class SafeTensorsWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly (string Name, long Elements)[] _tensors;
    private int _current;
    private long _writtenInCurrent;

    public SafeTensorsWriter(string path, IReadOnlyList<(string Name, long[] Shape)> tensors)
    {
        _tensors = tensors.Select(t => (t.Name, t.Shape.Aggregate(1L, (a, b) => a * b))).ToArray();
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = shape.Aggregate(1L, (a, b) => a * b) * 4;
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(header);
        // Pad the header with spaces to 8 bytes so tensor data is aligned, as the reference writer does.
        int padded = (json.Length + 7) / 8 * 8;
        _stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        _stream.Write(BitConverter.GetBytes((long)padded));
        _stream.Write(json);
        _stream.Write(Encoding.ASCII.GetBytes(new string(' ', padded - json.Length)));
        SkipEmpty();
    }

    /// <summary>Appends values to the tensor being written; tensors fill in declaration order.</summary>
    public void Write(ReadOnlySpan<float> values)
    {
        while (!values.IsEmpty)
        {
            if (_current >= _tensors.Length) throw new InvalidOperationException("more values written than the declared tensors hold");
            long room = _tensors[_current].Elements - _writtenInCurrent;
            int n = (int)Math.Min(room, values.Length);
            _stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values[..n]));
            _writtenInCurrent += n;
            values = values[n..];
            if (_writtenInCurrent == _tensors[_current].Elements)
            {
                _current++;
                _writtenInCurrent = 0;
                SkipEmpty();
            }
        }
    }

    private void SkipEmpty()
    {
        while (_current < _tensors.Length && _tensors[_current].Elements == 0) _current++;
    }

    public void Dispose()
    {
        _stream.Dispose();
        if (_current < _tensors.Length) throw new InvalidOperationException($"tensor '{_tensors[_current].Name}' was not fully written");
    }
}
