using Recsys.DenseCompute.Models;
using System.Buffers;
using System.Text.Json;
using MessagePack;

namespace Recsys.Cli.Bench.Workload;

public enum WireFormat
{
    Json,
    MessagePack,
}

/// <summary>One prepared ranking body and what it asks of the server.</summary>
public sealed record BenchRequest(byte[] Body, int Samples, long Lookups);

/// <summary>
/// Bodies are generated before the clock starts and replayed in turn, so the client spends its
/// time sending, not formatting JSON, and its own overhead stays small next to the server's.
/// Every body has its own sizes and ids drawn from the distributions.
/// </summary>
public sealed class RequestPool
{
    private readonly BenchRequest[] _requests;
    private int _next = -1;

    public RequestPool(WorkloadShape shape, SizeDistribution sizes, string ids, WireFormat format, int count, ulong seed)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "at least one distinct body");
        Format = format;
        var rng = new SplitMix(seed);
        IdSampler[] samplers = shape.Tables.Select((t, i) => IdSampler.Parse(ids, t.Rows, seed ^ (ulong)(i + 1) * 0x9E3779B97F4A7C15UL)).ToArray();
        _requests = new BenchRequest[count];
        var buffer = new ArrayBufferWriter<byte>(1 << 16);
        for (int i = 0; i < count; i++)
        {
            int batch = sizes.Next(rng);
            buffer.ResetWrittenCount();
            if (format == WireFormat.Json) WriteJson(buffer, shape, samplers, batch, rng);
            else WriteMessagePack(buffer, shape, samplers, batch, rng);
            _requests[i] = new BenchRequest(buffer.WrittenSpan.ToArray(), batch, batch * shape.LookupsPerSample);
        }
    }

    public WireFormat Format { get; }
    public string ContentType => Format == WireFormat.Json ? "application/json" : "application/x-msgpack";
    public IReadOnlyList<BenchRequest> Requests => _requests;

    /// <summary>The next body in round-robin order; safe from any thread.</summary>
    public BenchRequest Next() => _requests[(int)((uint)Interlocked.Increment(ref _next) % (uint)_requests.Length)];

    private static float Dense(SplitMix rng) => (float)Math.Round(rng.NextDouble() * 2, 3);

    private static void WriteJson(IBufferWriter<byte> buffer, WorkloadShape shape, IdSampler[] samplers, int batch, SplitMix rng)
    {
        using var json = new Utf8JsonWriter(buffer);
        json.WriteStartObject();
        json.WriteStartArray("dense");
        for (int b = 0; b < batch; b++)
        {
            json.WriteStartArray();
            for (int f = 0; f < shape.DenseFeatures; f++) json.WriteNumberValue(Dense(rng));
            json.WriteEndArray();
        }
        json.WriteEndArray();
        json.WriteStartObject("sparse");
        for (int t = 0; t < shape.Tables.Count; t++)
        {
            json.WriteStartArray(shape.Tables[t].Name);
            for (int b = 0; b < batch; b++)
            {
                json.WriteStartArray();
                for (int j = 0; j < shape.Tables[t].Lookups; j++) json.WriteNumberValue(samplers[t].Next(rng));
                json.WriteEndArray();
            }
            json.WriteEndArray();
        }
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteMessagePack(IBufferWriter<byte> buffer, WorkloadShape shape, IdSampler[] samplers, int batch, SplitMix rng)
    {
        var writer = new MessagePackWriter(buffer);
        writer.WriteMapHeader(2);
        writer.Write("dense");
        writer.WriteArrayHeader(batch);
        for (int b = 0; b < batch; b++)
        {
            writer.WriteArrayHeader(shape.DenseFeatures);
            for (int f = 0; f < shape.DenseFeatures; f++) writer.Write(Dense(rng));
        }
        writer.Write("sparse");
        writer.WriteMapHeader(shape.Tables.Count);
        for (int t = 0; t < shape.Tables.Count; t++)
        {
            writer.Write(shape.Tables[t].Name);
            writer.WriteArrayHeader(batch);
            for (int b = 0; b < batch; b++)
            {
                writer.WriteArrayHeader(shape.Tables[t].Lookups);
                for (int j = 0; j < shape.Tables[t].Lookups; j++) writer.Write(samplers[t].Next(rng));
            }
        }
        writer.Flush();
    }
}
