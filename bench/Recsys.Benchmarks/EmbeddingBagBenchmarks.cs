using BenchmarkDotNet.Attributes;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.Benchmarks;

/// <summary>
/// In-process embedding-bag kernel, BenchmarkDotNet tier: a 256 MiB (fp32) table, D = 64, 1024 bags.
/// The 4 GiB single-thread comparison against the C gather limit and PyTorch is the console mode
/// (EmbeddingBagConsole, `-- embag`); this one tracks per-format kernel cost and allocation.
///   dotnet run -c Release --project bench/Recsys.Benchmarks -- --filter '*EmbeddingBagBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class EmbeddingBagBenchmarks
{
    private const int Dim = 64, Bags = 1024, Rows = 1 << 20;
    private EmbeddingTable _table = null!;
    private long[] _indices = [];
    private int[] _offsets = [];
    private float[] _output = [];

    [Params(RowFormat.Fp32, RowFormat.Fp16, RowFormat.Int8, RowFormat.Int4)]
    public RowFormat Format { get; set; }

    [Params(20, 80)]
    public int P { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        float[] values = new float[Dim];
        _table = new EmbeddingTable(Rows, Dim, Format);
        for (long r = 0; r < Rows; r++)
        {
            for (int c = 0; c < Dim; c++) values[c] = (float)rng.NextDouble() - 0.5f;
            RowCodec.Encode(values, Format, _table.Row(r));
        }
        _indices = new long[Bags * P];
        for (int i = 0; i < _indices.Length; i++) _indices[i] = rng.NextInt64(Rows);
        _offsets = Enumerable.Range(0, Bags + 1).Select(b => b * P).ToArray();
        _output = new float[Bags * Dim];
    }

    [GlobalCleanup]
    public void Cleanup() => _table.Dispose();

    [Benchmark(OperationsPerInvoke = 1)]
    public void Pool() => EmbeddingBag.Pool(_table, _indices, _offsets, default, Pooling.Sum, _output);
}
