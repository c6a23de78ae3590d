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
/// Rows/s pooled by one shard (the whole table in one shard, D = 64, ~4096 ids a call): the flat
/// EmbeddingBag kernel over the same rows (baseline), the shard's resident path, the shard's FASTER
/// path with a 10% grant, and a co-hosted grain call to a resident shard. Times are per row
/// (OperationsPerInvoke = ids a call), so rows/s = 1e9 / ns.
/// Run: dotnet run -c Release --project bench/Recsys.Benchmarks -- --filter '*ShardLookupBenchmarks*'
/// </summary>
[Config(typeof(Config))]
[MemoryDiagnoser]
public class ShardLookupBenchmarks
{
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.Default.WithToolchain(BenchmarkDotNet.Toolchains.InProcess.Emit.InProcessEmitToolchain.Instance)
                .WithStrategy(RunStrategy.Throughput).WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(10)
                .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(200)));
            WithOption(ConfigOptions.DisableOptimizationsValidator, true);
        }
    }

    [Params(20, 80)] public int Pooling { get; set; }
    [Params(RowFormat.Fp32, RowFormat.Int8)] public RowFormat Format { get; set; }
    [Params(IdDistribution.Uniform, IdDistribution.Zipf)] public IdDistribution Ids { get; set; }

    private (long[] Ids, int[] Offsets)[] _requests = [];
    private PooledLookupRequest[] _messages = [];
    private float[] _output = [];
    private int _next;
    private EmbeddingTable? _flat;
    private EmbeddingShard? _shard;
    private Microsoft.Extensions.Hosting.IHost? _silo;
    private IEmbeddingShardGrain? _grain;
    private string _dir = "";

    private void MakeRequests()
    {
        _requests = ShardBenchData.MakeRequests(Ids, Pooling, seed: Pooling * 7 + (int)Ids);
        _output = new float[(_requests[0].Offsets.Length - 1) * ShardBenchData.Dim];
    }

    [GlobalSetup(Target = nameof(FlatKernel))]
    public void SetupFlat()
    {
        MakeRequests();
        _flat = ShardBenchData.FlatTable(Format);
    }

    /// <summary>The grant holds every row: a flat array, FASTER never read.</summary>
    [GlobalSetup(Target = nameof(ShardResident))]
    public void SetupResident() => SetupShard(faster: false);

    /// <summary>A 10% grant: 7.5% of the rows in the hot-row cache, 2.5% in FASTER's log memory, the rest on disk.</summary>
    [GlobalSetup(Target = nameof(ShardFaster10Percent))]
    public void SetupFaster() => SetupShard(faster: true);

    private void SetupShard(bool faster)
    {
        MakeRequests();
        long bytes = ShardBenchData.Rows * RowLayout.RowBytes(Format, ShardBenchData.Dim);
        _dir = Path.Combine(ShardBenchData.Root, "store-" + Guid.NewGuid().ToString("N"));
        var map = new ShardMap(ShardBenchData.Rows, 1);
        _shard = EmbeddingShard.Open(map, 0, Format, ShardBenchData.Dim, faster ? bytes / 10 : bytes, _dir);
        using SafeTensorsFile file = SafeTensorsFile.Open(ShardBenchData.WeightsFile);
        ShardLoader.Load(_shard, file, DlrmSpec.EmbeddingWeightName(ShardBenchData.TableIndex(Format)), new ShardLoadProgress().Start("bench", _shard.Slots), NullLogger.Instance, "bench", default);
        // Warm the cache (and FASTER's pages) so the measurement sees the steady state.
        for (int i = 0; i < ShardBenchData.WarmupRequests; i++) ShardCall();
    }

    [GlobalSetup(Target = nameof(GrainCall))]
    public void SetupGrain()
    {
        MakeRequests();
        _messages = _requests.Select(r => new PooledLookupRequest { Ids = r.Ids, Offsets = r.Offsets }).ToArray();
        _dir = Path.Combine(ShardBenchData.Root, "silo-" + Guid.NewGuid().ToString("N"));
        string models = ShardBenchData.ModelsDirectory;
        _silo = Host.CreateDefaultBuilder()
            .ConfigureLogging(l => l.ClearProviders())
            .UseOrleans(silo => silo.UseLocalhostClustering().AddEmbeddingShards(o =>
            {
                o.DataDirectory = _dir;
                o.ModelsDirectory = models;
                o.MemoryBudgetBytes = 4L << 30;
            }))
            .Build();
        _silo.StartAsync().GetAwaiter().GetResult();
        _grain = _silo.Services.GetRequiredService<IGrainFactory>().GetGrain<IEmbeddingShardGrain>(ShardKey.Format("bench", "1", ShardBenchData.TableName(Format), 0));
        _grain.GetStatus().GetAwaiter().GetResult(); // activation loads the shard
        for (int i = 0; i < ShardBenchData.WarmupRequests; i++) GrainCall().GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _flat?.Dispose();
        _shard?.Dispose();
        if (_silo != null)
        {
            _silo.StopAsync().GetAwaiter().GetResult();
            _silo.Dispose();
        }
        _flat = null;
        _shard = null;
        _silo = null;
        ShardBenchData.Cleanup(_dir);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = ShardBenchData.IdsPerCall)]
    public void FlatKernel()
    {
        (long[] ids, int[] offsets) = _requests[_next++ % ShardBenchData.Requests];
        EmbeddingBag.Pool(_flat!, ids, offsets, default, DenseCompute.Embeddings.Pooling.Sum, _output);
    }

    [Benchmark(OperationsPerInvoke = ShardBenchData.IdsPerCall)]
    public void ShardResident() => ShardCall();

    [Benchmark(OperationsPerInvoke = ShardBenchData.IdsPerCall)]
    public void ShardFaster10Percent() => ShardCall();

    private void ShardCall()
    {
        (long[] ids, int[] offsets) = _requests[_next++ % ShardBenchData.Requests];
        ValueTask pending = _shard!.LookupAsync(ids, offsets, null, _output);
        if (!pending.IsCompletedSuccessfully) pending.AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(OperationsPerInvoke = ShardBenchData.IdsPerCall)]
    public async Task GrainCall() => await _grain!.Lookup(_messages[_next++ % ShardBenchData.Requests]);
}
