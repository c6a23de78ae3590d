using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Microsoft.Extensions.Logging.Abstractions;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Loading;
using Recsys.EmbeddingGrains.Serving;
using Recsys.EmbeddingGrains.Sharding;

namespace Recsys.Benchmarks;

public enum ShardBudget
{
    /// <summary>The hot-row cache holds 10% of the rows (grant = 10% / 0.75 of the bytes).</summary>
    Cache10Percent,
    /// <summary>The table is twice the grant.</summary>
    Half,
}

/// <summary>
/// Per-call latency of one shard that does not hold all its rows (fp32, D = 64, P = 20, ~4096 ids a
/// call): one call per iteration, so BenchmarkDotNet's percentiles are per-call percentiles.
/// The flat kernel over the whole table, timed the same way, is the baseline.
/// Run: dotnet run -c Release --project bench/Recsys.Benchmarks -- --filter '*ShardCacheLatencyBenchmarks*'
/// </summary>
[Config(typeof(Config))]
public class ShardCacheLatencyBenchmarks
{
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.Default.WithToolchain(BenchmarkDotNet.Toolchains.InProcess.Emit.InProcessEmitToolchain.Instance)
                .WithStrategy(RunStrategy.Monitoring).WithLaunchCount(1).WithWarmupCount(50).WithIterationCount(600)
                .WithInvocationCount(1).WithUnrollFactor(1));
            AddColumn(StatisticColumn.P50, StatisticColumn.P95, new P99Column(), new RowsPerSecondColumn());
            WithOption(ConfigOptions.DisableOptimizationsValidator, true);
        }
    }

    [Params(ShardBudget.Cache10Percent, ShardBudget.Half)] public ShardBudget Budget { get; set; }
    [Params(IdDistribution.Uniform, IdDistribution.Zipf)] public IdDistribution Ids { get; set; }

    private const int Pooling = 20;
    private (long[] Ids, int[] Offsets)[] _requests = [];
    private float[] _output = [];
    private int _next;
    private EmbeddingTable? _flat;
    private EmbeddingShard? _shard;
    private string _dir = "";

    [GlobalSetup(Target = nameof(FlatKernel))]
    public void SetupFlat()
    {
        _requests = ShardBenchData.MakeRequests(Ids, Pooling, seed: 99 + (int)Ids);
        _output = new float[(_requests[0].Offsets.Length - 1) * ShardBenchData.Dim];
        _flat = ShardBenchData.FlatTable(RowFormat.Fp32);
    }

    [GlobalSetup(Target = nameof(Shard))]
    public void SetupShard()
    {
        _requests = ShardBenchData.MakeRequests(Ids, Pooling, seed: 99 + (int)Ids);
        _output = new float[(_requests[0].Offsets.Length - 1) * ShardBenchData.Dim];
        long bytes = ShardBenchData.Rows * RowLayout.RowBytes(RowFormat.Fp32, ShardBenchData.Dim);
        long grant = Budget == ShardBudget.Half ? bytes / 2 : (long)(bytes * 0.10 / 0.75);
        _dir = Path.Combine(ShardBenchData.Root, "latency-" + Guid.NewGuid().ToString("N"));
        _shard = EmbeddingShard.Open(new ShardMap(ShardBenchData.Rows, 1), 0, RowFormat.Fp32, ShardBenchData.Dim, grant, _dir);
        using SafeTensorsFile file = SafeTensorsFile.Open(ShardBenchData.WeightsFile);
        ShardLoader.Load(_shard, file, DlrmSpec.EmbeddingWeightName(0), new ShardLoadProgress().Start("bench", _shard.Slots), NullLogger.Instance, "bench", default);
        for (int i = 0; i < 3 * ShardBenchData.Requests; i++) Shard();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_shard != null)
        {
            Console.WriteLine($"// shard {Budget}/{Ids}: cache {_shard.ResidentRows} rows of {_shard.Slots}, hit rate {(double)_shard.CacheHits / Math.Max(1, _shard.Lookups):P1}, disk reads {(double)_shard.DiskReads / Math.Max(1, _shard.Lookups):P1} of ids");
        }
        _flat?.Dispose();
        _shard?.Dispose();
        _flat = null;
        _shard = null;
        ShardBenchData.Cleanup(_dir);
    }

    [Benchmark(Baseline = true)]
    public void FlatKernel()
    {
        (long[] ids, int[] offsets) = _requests[_next++ % ShardBenchData.Requests];
        EmbeddingBag.Pool(_flat!, ids, offsets, default, DenseCompute.Embeddings.Pooling.Sum, _output);
    }

    [Benchmark]
    public void Shard()
    {
        (long[] ids, int[] offsets) = _requests[_next++ % ShardBenchData.Requests];
        ValueTask pending = _shard!.LookupAsync(ids, offsets, null, _output);
        if (!pending.IsCompletedSuccessfully) pending.AsTask().GetAwaiter().GetResult();
    }

    private sealed class P99Column : IColumn
    {
        public string Id => "P99";
        public string ColumnName => "P99";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Statistics;
        public int PriorityInCategory => 10;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Time;
        public string Legend => "99th percentile of per-call time";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            return stats is null ? "-" : $"{stats.Percentiles.Percentile(99) / 1000:F1} us";
        }
    }

    private sealed class RowsPerSecondColumn : IColumn
    {
        public string Id => "MRowsPerSec";
        public string ColumnName => "M rows/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "ids pooled per second (ids a call / mean call time)";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            int ids = ShardBenchData.IdsPerCall / Pooling * Pooling;
            return stats is null ? "-" : $"{ids / stats.Median * 1000:F2}";
        }
    }
}
