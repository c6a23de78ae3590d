using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using MessagePack;
using Recsys.DenseCompute.Dlrm;
using Recsys.Router.Batching;
using Recsys.Router.Hosting;
using Recsys.Router.Repository;
using Recsys.Router.Serving;

namespace Recsys.Benchmarks;

/// <summary>
/// The ranking service against PyTorch's bare forward of the same model on the same requests
/// (bench/peers/torch_dlrm.py writes them; see bench/RESULTS-serving.md for the commands).
/// Engine: fan-out to co-hosted shard grains + dense, no HTTP. Http: MessagePack bodies over
/// loopback through Kestrel, the batcher and the engine. InProcess: one silo per model, started once.
/// </summary>
[InProcess]
[MemoryDiagnoser]
[WarmupCount(3)]
[IterationCount(10)]
public class ServingBenchmarks
{
    private RecsysServer _server = null!;
    private ServedModel _model = null!;
    private RankInput[] _inputs = [];
    private byte[][] _bodies = [];
    private HttpClient _http = null!;
    private DlrmModel _whole = null!;
    private RankBatch[] _batches = [];

    /// <summary>A model directory under $RECSYS_SERVING_BENCH/models with requests-{Model}.json beside it.</summary>
    [Params("rmc1", "rmc1-int8", "rmc2")]
    public string Model { get; set; } = "rmc1";

    private static string Root => Environment.GetEnvironmentVariable("RECSYS_SERVING_BENCH")
        ?? throw new InvalidOperationException("set RECSYS_SERVING_BENCH to the folder with models/ and requests-*.json");

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    private async Task SetupAsync()
    {
        string models = Path.Combine(Root, "models");
        _server = await RecsysServer.StartAsync(new ServeOptions
        {
            ModelsDirectory = models,
            DataDirectory = Path.Combine(Root, "data"),
            Port = 0,
            SiloPort = FreePort(),
            GatewayPort = FreePort(),
            ClusterId = "bench-" + Guid.NewGuid().ToString("N")[..6],
            WriteDemoModelWhenEmpty = false,
            EmbeddingMemoryBytes = 4L << 30,
            Deadline = TimeSpan.FromSeconds(30),
            Batching = new BatchingOptions { MaxBatch = 512, MaxDelay = TimeSpan.Zero },
        }, TextWriter.Null, loadModels: false);
        await _server.Registry!.LoadNewestAsync(Model);
        _model = await _server.Registry.AcquireAsync(Model, null);

        JsonNode requests = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Root, $"requests-{Model}.json")))!;
        var parser = new RankRequestJson(_model.Spec);
        JsonArray bodies = requests["bodies"]!.AsArray();
        _batches = bodies.Select(b => parser.Parse(Encoding.UTF8.GetBytes(b!.ToJsonString()))).ToArray();
        _inputs = _batches.Select(RankInput.From).ToArray();
        if (Samples != 512) throw new InvalidOperationException($"{Samples} samples per invocation; the benchmarks assume 4 x 128 (torch_dlrm.py --batch 128 --batches 4)");
        _bodies = bodies.Select(b => ToMessagePack(b!)).ToArray();
        _http = new HttpClient { BaseAddress = _server.Address };
        _whole = DlrmModel.Load(_server.Registry.Repository.VersionDirectory(Model, _model.Version));

        // Same samples, same answers: refuse to time anything that disagrees with PyTorch (which
        // runs the fp32 tables; int8 rows differ by their quantization error only).
        float[] torch = requests["torch_scores"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
        float[] ours = await RankingEngine.RunAsync(_model, LookupBatch.Merge([_inputs[0]], _model.Spec.DenseFeatures));
        float tolerance = _model.Spec.Tables.Any(t => t.Storage != DenseCompute.Embeddings.RowFormat.Fp32) ? 2e-2f : 1e-4f;
        for (int i = 0; i < torch.Length; i++)
        {
            if (Math.Abs(torch[i] - ours[i]) > tolerance) throw new InvalidOperationException($"sample {i}: PyTorch {torch[i]}, Recsys {ours[i]}");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        // Where an engine pass spends its time (per batch of 128): printed into the BenchmarkDotNet log.
        var m = _model.Metrics;
        foreach (var stage in Enum.GetValues<Router.Metrics.Stage>())
        {
            var h = m.StageHistogram(stage);
            if (h.Count > 0) Console.WriteLine($"// stage {Model} {stage}: mean {h.Sum / h.Count * 1e6:F0} us over {h.Count}");
        }
        Console.WriteLine($"// shard calls {Model}: {m.ShardCalls}, bytes sent {m.BytesSent}, received {m.BytesReceived}");
        var cache = _model.CacheStatsAsync().GetAwaiter().GetResult();
        Console.WriteLine($"// shards {Model}: {cache.Shards} shards, {cache.Rows} rows, {cache.ResidentRows} resident, cache hits {cache.CacheHits}, misses {cache.CacheMisses}");
        _http.Dispose();
        _whole.Dispose();
        _model.Release();
        _server.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>4 requests of 128 samples per invocation (torch_dlrm.py --batch 128 --batches 4): BenchmarkDotNet reports time per sample.</summary>
    private int Samples => _inputs.Sum(i => i.Batch);

    [Benchmark(OperationsPerInvoke = 512, Description = "engine: resident shards pooled in place + dense")]
    public async Task Engine()
    {
        _model.ReadLocalShardsInPlace = true;
        foreach (RankInput input in _inputs) await RankingEngine.RunAsync(_model, LookupBatch.Merge([input], _model.Spec.DenseFeatures));
    }

    /// <summary>The path before in-place pooling: one grain call per touched shard, for the before/after ratio in the same run.</summary>
    [Benchmark(OperationsPerInvoke = 512, Description = "engine: one grain call per shard + dense")]
    public async Task EngineGrainCalls()
    {
        _model.ReadLocalShardsInPlace = false;
        try
        {
            foreach (RankInput input in _inputs) await RankingEngine.RunAsync(_model, LookupBatch.Merge([input], _model.Spec.DenseFeatures));
        }
        finally
        {
            _model.ReadLocalShardsInPlace = true;
        }
    }

    [Benchmark(OperationsPerInvoke = 512, Description = "whole model in one process (recsys rank)")]
    public void WholeModel()
    {
        foreach (RankBatch batch in _batches) _whole.Score(batch);
    }

    [Benchmark(OperationsPerInvoke = 512, Description = "HTTP MessagePack, 2 clients")]
    public async Task HttpMessagePack()
    {
        await Task.WhenAll(Enumerable.Range(0, 2).Select(async c =>
        {
            for (int i = c; i < _bodies.Length; i += 2)
            {
                using var content = new ByteArrayContent(_bodies[i]);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/x-msgpack");
                using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/models/{Model}/rank") { Content = content };
                request.Headers.Accept.ParseAdd("application/x-msgpack");
                using HttpResponseMessage response = await _http.SendAsync(request);
                if (response.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException(await response.Content.ReadAsStringAsync());
                await response.Content.ReadAsByteArrayAsync();
            }
        }));
    }

    internal static byte[] ToMessagePack(JsonNode body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        JsonArray dense = body["dense"]!.AsArray();
        JsonObject sparse = body["sparse"]!.AsObject();
        writer.WriteMapHeader(2);
        writer.Write("dense");
        writer.WriteArrayHeader(dense.Count);
        foreach (JsonNode? row in dense)
        {
            writer.WriteArrayHeader(row!.AsArray().Count);
            foreach (JsonNode? v in row.AsArray()) writer.Write(v!.GetValue<float>());
        }
        writer.Write("sparse");
        writer.WriteMapHeader(sparse.Count);
        foreach (var (name, bags) in sparse)
        {
            writer.Write(name);
            writer.WriteArrayHeader(bags!.AsArray().Count);
            foreach (JsonNode? bag in bags.AsArray())
            {
                writer.WriteArrayHeader(bag!.AsArray().Count);
                foreach (JsonNode? id in bag.AsArray()) writer.Write(id!.GetValue<long>());
            }
        }
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
