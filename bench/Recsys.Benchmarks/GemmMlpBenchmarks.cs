using BenchmarkDotNet.Attributes;

namespace Recsys.Benchmarks;

/// <summary>
/// The DLRM bottom and top MLPs: our PackedLinear chain against ONNX Runtime (the baseline
/// row, so the Ratio column reads ours / ORT time) on the same weights, in the same run.
/// dotnet run -c Release --project bench/Recsys.Benchmarks -- --filter '*GemmMlpBenchmarks*'
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 7)]
[IterationTime(150)]
public class GemmMlpBenchmarks
{
    private GemmMlp _mlp = null!;
    private float[] _input = null!;
    private OrtMlpRunner _ort = null!;

    [Params("bottom", "top")]
    public string Mlp { get; set; } = "bottom";

    [Params(1, 16, 64, 256, 1024)]
    public int Batch { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _mlp = new GemmMlp(Mlp, Batch);
        _input = GemmMlp.Input(Batch, _mlp.Dims[0]);
        _ort = new OrtMlpRunner(_mlp, Threads, _input, Batch);
    }

    [GlobalCleanup]
    public void Cleanup() => _ort.Dispose();

    [Benchmark(Baseline = true)]
    public void OnnxRuntime() => _ort.Run();

    [Benchmark]
    public float Ours() => _mlp.Forward(_input, Batch, Threads)[0];
}
