using System.Buffers;
using Microsoft.AspNetCore.Http;
using Recsys.DenseCompute.Dlrm;

namespace Recsys.Router.Http;

/// <summary>A request body read whole into a pooled buffer (parsers need it contiguous); return it with Dispose.</summary>
internal readonly struct RequestBody : IDisposable
{
    private readonly byte[] _buffer;

    private RequestBody(byte[] buffer, int length)
    {
        _buffer = buffer;
        Length = length;
    }

    public int Length { get; }
    public ReadOnlyMemory<byte> Memory => _buffer.AsMemory(0, Length);
    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, Length);

    public static async Task<RequestBody> ReadAsync(HttpRequest request, long maxBytes, CancellationToken cancel)
    {
        long? declared = request.ContentLength;
        if (declared > maxBytes) throw TooLarge(declared.Value, maxBytes);
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Clamp(declared ?? 4096, 256, maxBytes));
        int length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length >= maxBytes) throw TooLarge(length + 1, maxBytes);
                    byte[] larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(maxBytes + 1, (long)buffer.Length * 2));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                int read = await request.Body.ReadAsync(buffer.AsMemory(length), cancel).ConfigureAwait(false);
                if (read == 0) break;
                length += read;
                if (length > maxBytes) throw TooLarge(length, maxBytes);
            }
            return new RequestBody(buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private static InvalidRequestException TooLarge(long bytes, long max) =>
        new("body", $"{bytes} bytes exceeds the server's limit of {max} bytes (split the batch)", 413);

    public void Dispose()
    {
        if (_buffer is not null) ArrayPool<byte>.Shared.Return(_buffer);
    }
}
