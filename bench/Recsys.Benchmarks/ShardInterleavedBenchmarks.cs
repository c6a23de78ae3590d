using System.Diagnostics;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Hosting;
using Recsys.EmbeddingGrains.Loading;
using Recsys.EmbeddingGrains.Serving;
using Recsys.EmbeddingGrains.Sharding;

namespace Recsys.Benchmarks;

/// <summary>
/// The shard paths and their peer measured back to back, call by call: each iteration makes one
/// ~4096-id call to every path (flat EmbeddingBag kernel, resident shard, shard with a 10% row cache,
/// shard with half its bytes, co-hosted grain call to a resident shard), in a rotating order. On a
/// shared 2-core machine whose load drifts by minutes, sequential BenchmarkDotNet cases compare
/// different machines; per-round ratios do not. The table (median rows/s, median of per-round
/// ratios to the flat kernel, p50/p99 per call) is printed at cleanup and appended to
/// $SHARD_BENCH_OUT (default /tmp/shard-interleaved.md).
/// Run: dotnet run -c Release --project bench/Recsys.Benchmarks -- --filter '*ShardInterleavedBenchmarks*'
/// </summary>
[Config(typeof(Config))]
public class ShardInterleavedBenchmarks
{
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.Default.WithToolchain(BenchmarkDotNet.Toolchains.InProcess.Emit.InProcessEmitToolchain.Instance)
                .WithStrategy(RunStrategy.Monitoring).WithLaunchCount(1).WithWarmupCount(5)
                .WithIterationCount(int.TryParse(Environment.GetEnvironmentVariable("SHARD_BENCH_ROUNDS"), out int n) ? n : 150)
                .WithInvocationCount(1).WithUnrollFactor(1));
            WithOption(ConfigOptions.DisableOptimizationsValidator, true);
        }
    }

    private static readonly string[] Paths = ["flat kernel", "shard resident", "shard cache 10%", "shard 1/2 budget", "grain call (resident)"];

    [Params(20, 80)] public int Pooling { get; set; }
    [Params(RowFormat.Fp32, RowFormat.Int8)] public RowFormat Format { get; set; }
    [Params(IdDistribution.Uniform, IdDistribution.Zipf)] public IdDistribution Ids { get; set; }

    private (long[] Ids, int[] Offsets)[] _requests = [];
    private PooledLookupRequest[] _messages = [];
    private float[] _output = [];
    private int _round;
    private EmbeddingTable? _flat;
    private readonly EmbeddingShard?[] _shards = new EmbeddingShard?[3];
    private Microsoft.Extensions.Hosting.IHost? _silo;
    private IEmbeddingShardGrain? _grain;
    private readonly List<double>[] _seconds = Paths.Select(_ => new List<double>()).ToArray();
    private readonly List<double>[] _ratios = Paths.Select(_ => new List<double>()).ToArray();
    private string _dir = "";

    [GlobalSetup]
    public void Setup()
    {
        _requests = ShardBenchData.MakeRequests(Ids, Pooling, seed: Pooling * 7 + (int)Ids);
        _messages = _requests.Select(r => new PooledLookupRequest { Ids = r.Ids, Offsets = r.Offsets }).ToArray();
        _output = new float[(_requests[0].Offsets.Length - 1) * ShardBenchData.Dim];
        _dir = Path.Combine(ShardBenchData.Root, "interleaved-" + Guid.NewGuid().ToString("N"));
        _flat = ShardBenchData.FlatTable(Format);

        long bytes = ShardBenchData.Rows * RowLayout.RowBytes(Format, ShardBenchData.Dim);
        // Grants: all rows; a cache of 10% of the rows (3/4 of a grant goes to the cache); half the bytes.
        long[] grants = [bytes, (long)(bytes * 0.10 / 0.75), bytes / 2];
        using SafeTensorsFile file = SafeTensorsFile.Open(ShardBenchData.WeightsFile);
        for (int s = 0; s < grants.Length; s++)
        {
            _shards[s] = EmbeddingShard.Open(new ShardMap(ShardBenchData.Rows, 1), 0, Format, ShardBenchData.Dim, grants[s], Path.Combine(_dir, $"s{s}"));
            ShardLoader.Load(_shards[s]!, file, DlrmSpec.EmbeddingWeightName(ShardBenchData.TableIndex(Format)), new ShardLoadProgress().Start("bench", _shards[s]!.Slots), NullLogger.Instance, "bench", default);
        }

        string models = ShardBenchData.ModelsDirectory;
        string siloData = Path.Combine(_dir, "silo");
        _silo = Host.CreateDefaultBuilder()
            .ConfigureLogging(l => l.ClearProviders())
            .UseOrleans(silo => silo.UseLocalhostClustering().AddEmbeddingShards(o =>
            {
                o.DataDirectory = siloData;
                o.ModelsDirectory = models;
                o.MemoryBudgetBytes = 4L << 30;
            }))
            .Build();
        _silo.StartAsync().GetAwaiter().GetResult();
        _grain = _silo.Services.GetRequiredService<IGrainFactory>().GetGrain<IEmbeddingShardGrain>(ShardKey.Format("bench", "1", ShardBenchData.TableName(Format), 0));
        _grain.GetStatus().GetAwaiter().GetResult();

        // Warm every path (caches, FASTER pages, JIT) before measuring.
        for (int i = 0; i < ShardBenchData.WarmupRequests; i++)
        {
            for (int p = 0; p < Paths.Length; p++) Call(p, i);
        }
        foreach (List<double> l in _seconds) l.Clear();
        foreach (List<double> l in _ratios) l.Clear();
    }

    [Benchmark]
    public void Round()
    {
        int request = ShardBenchData.WarmupRequests + _round % (ShardBenchData.Requests - ShardBenchData.WarmupRequests);
        Span<double> times = stackalloc double[Paths.Length];
        for (int k = 0; k < Paths.Length; k++)
        {
            int p = (k + _round) % Paths.Length; // rotate the order so no path always runs first
            long start = Stopwatch.GetTimestamp();
            Call(p, request);
            times[p] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        for (int p = 0; p < Paths.Length; p++)
        {
            _seconds[p].Add(times[p]);
            _ratios[p].Add(times[0] / times[p]);
        }
        _round++;
    }

    private void Call(int path, int request)
    {
        (long[] ids, int[] offsets) = _requests[request];
        switch (path)
        {
            case 0:
                EmbeddingBag.Pool(_flat!, ids, offsets, default, DenseCompute.Embeddings.Pooling.Sum, _output);
                break;
            case 1 or 2 or 3:
                ValueTask pending = _shards[path - 1]!.LookupAsync(ids, offsets, null, _output);
                if (!pending.IsCompletedSuccessfully) pending.AsTask().GetAwaiter().GetResult();
                break;
            default:
                _grain!.Lookup(_messages[request]).GetAwaiter().GetResult();
                break;
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        var text = new StringBuilder();
        int idsPerCall = _requests[0].Ids.Length;
        text.AppendLine(CultureInfo.InvariantCulture, $"### P={Pooling}, {Format}, {Ids} ids ({idsPerCall} ids a call, {_round} rounds, {ShardBenchData.Rows} rows x {ShardBenchData.Dim})");
        text.AppendLine("| path | median M rows/s | median ratio to flat kernel | p50 per call | p99 per call | cache hit rate |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|");
        for (int p = 0; p < Paths.Length; p++)
        {
            double[] secs = [.. _seconds[p].Order()];
            double[] ratios = [.. _ratios[p].Order()];
            if (secs.Length == 0) continue;
            string hits = p is >= 1 and <= 3 && _shards[p - 1] is { } s ? ((double)s.CacheHits / Math.Max(1, s.Lookups)).ToString("P1", CultureInfo.InvariantCulture) : "";
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {Paths[p]} | {idsPerCall / Percentile(secs, 50) / 1e6:F2} | {Percentile(ratios, 50):F2} | {Percentile(secs, 50) * 1e6:F0} us | {Percentile(secs, 99) * 1e6:F0} us | {hits} |");
        }
        Console.WriteLine(text.ToString());
        File.AppendAllText(Environment.GetEnvironmentVariable("SHARD_BENCH_OUT") ?? "/tmp/shard-interleaved.md", text.ToString() + Environment.NewLine);

        _flat?.Dispose();
        foreach (EmbeddingShard? s in _shards) s?.Dispose();
        if (_silo != null)
        {
            _silo.StopAsync().GetAwaiter().GetResult();
            _silo.Dispose();
        }
        _flat = null;
        Array.Clear(_shards);
        _silo = null;
        ShardBenchData.Cleanup(_dir);
    }

    private static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100 * sorted.Length) - 1)];
}
