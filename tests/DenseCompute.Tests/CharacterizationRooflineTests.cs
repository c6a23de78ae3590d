using Recsys.DenseCompute.Characterization;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

/// <summary>
/// Roofline placement and bound classification against the BASELINES.md constants
/// (<see cref="MachineLimits.Baselines"/>: 40 GB/s, 272 Gflop/s fp32, gathers 235 M rows/s at
/// 72 B and 155 M rows/s at 256 B), so no test depends on a probe of a shared machine.
/// </summary>
public class CharacterizationRooflineTests
{
    private static readonly MachineLimits Limits = MachineLimits.Baselines;

    [Fact]
    public void A_wide_fc_is_memory_bound_at_batch_1_and_compute_bound_at_batch_256()
    {
        // 1024 -> 1024 fp32 at B=1: flops 2·1024² + 1024 = 2 098 176 -> 7.7 µs at 272 Gflop/s;
        // bytes 4·1024² + 4·1024 (bias) + 4·1024 (in) + 4·1024 (out) = 4 206 592 -> 105 µs at 40 GB/s.
        RooflinePoint one = Roofline.Place(OperatorAccounting.Linear("fc", 1, 1024, 1024), Limits);
        Assert.Equal(Bound.Memory, one.Bound);
        Assert.Equal(4_206_592 / 40e9, one.MemorySeconds, 12);
        Assert.Equal(2_098_176 / 272e9, one.ComputeSeconds, 12);
        // B=256: flops 256 · 2 098 176 = 537 133 056 -> 1.97 ms; bytes 4 198 400 + 2 · 256·1024·4 = 6 295 552 -> 157 µs.
        RooflinePoint many = Roofline.Place(OperatorAccounting.Linear("fc", 256, 1024, 1024), Limits);
        Assert.Equal(Bound.Compute, many.Bound);
        Assert.Equal(537_133_056 / 272e9, many.Seconds, 12);
    }

    [Fact]
    public void Gather_rate_is_interpolated_per_row_between_the_measured_sizes()
    {
        Assert.Equal(72 * 235e6, Limits.GatherBytesPerSecond(72), 3);
        Assert.Equal(64 * 235e6, Limits.GatherBytesPerSecond(64), 3);   // below the smallest: its rate
        Assert.Equal(1024 * 68.5e6, Limits.GatherBytesPerSecond(1024), 3); // above the largest: its rate
        // 164 B is halfway from 72 to 256: the time per row is the mean of 1/235e6 and 1/155e6.
        Assert.Equal(164 / (0.5 / 235e6 + 0.5 / 155e6), Limits.GatherBytesPerSecond(164), 3);
    }

    [Fact]
    public void An_embedding_bag_is_bound_by_the_gather_rate()
    {
        // 80 fp32 rows of dim 64 (256 B) per bag, B=1: 80 / 155e6 s for the rows,
        // plus 80·8 + 2·4 + 64·4 = 904 B of ids, offsets and output at 40 GB/s.
        var table = new TableSpec("T", 1_000_000, 64, Embeddings.Pooling.Sum, Embeddings.RowFormat.Fp32, 1, 80);
        RooflinePoint p = Roofline.Place(OperatorAccounting.EmbeddingBag("e", 1, table, 80), Limits);
        Assert.Equal(Bound.Embedding, p.Bound);
        Assert.Equal(80 / 155e6 + 904 / 40e9, p.MemorySeconds, 15);
    }

    [Fact]
    public void Huge_tables_and_a_tiny_mlp_make_an_embedding_bound_model()
    {
        using Built built = Built.Write(Presets.HugeTablesTinyMlp);
        foreach (int batch in new[] { 1, 16, 256 })
        {
            IReadOnlyList<OperatorCost> ops = built.Profiler.Operators(batch);
            Assert.Equal(Bound.Embedding, Roofline.Classify(ops, Limits));
            BatchReport report = Characterizer.Batch(ops, built.Profiler.MaxLiveActivationBytes(batch), Limits, null, batch);
            Assert.Equal(Bound.Embedding, report.Bound);
            // The paper's embedding intensity: well under the machine balance (6.8 flop/B).
            Assert.All(ops.Where(o => o.Kind == OperatorKind.EmbeddingLookup), o => Assert.True(o.FlopsPerByte < 1, $"{o.Name}: {o.FlopsPerByte} flop/B"));
        }
    }

    [Fact]
    public void A_wide_mlp_makes_a_compute_bound_model_at_large_batch_and_its_fcs_memory_bound_at_batch_1()
    {
        using Built built = Built.Write(Presets.WideMlp);
        Assert.Equal(Bound.Compute, Roofline.Classify(built.Profiler.Operators(256), Limits));
        Assert.All(built.Profiler.Operators(1).Where(o => o.Kind == OperatorKind.Gemm),
            o => Assert.Equal(Bound.Memory, Roofline.Place(o, Limits).Bound));
    }

    [Fact]
    public void Characterizer_reports_fractions_and_a_breakdown_from_given_timings()
    {
        // Two operators with roofline times r1, r2; measured medians twice those, means 100 and 300 ns
        // over a 500 ns pass: FC 20%, embedding 60%, 100 ns unattributed, coverage 0.8.
        OperatorCost fc = OperatorAccounting.Linear("fc", 1, 1024, 1024);
        var table = new TableSpec("T", 1_000_000, 64, Embeddings.Pooling.Sum, Embeddings.RowFormat.Fp32, 1, 80);
        OperatorCost bag = OperatorAccounting.EmbeddingBag("emb", 1, table, 80);
        double r1 = Roofline.Place(fc, Limits).Seconds * 1e9, r2 = Roofline.Place(bag, Limits).Seconds * 1e9;
        var timing = new ForwardTiming(1, 10, 500, 900, 500, 10, [new OperatorTiming("fc", 2 * r1, 100), new OperatorTiming("emb", 2 * r2, 300)], null);
        BatchReport report = Characterizer.Batch([fc, bag], 1234, Limits, timing, 1);
        Assert.Equal(0.5, report.Operators[0].AchievedFraction!.Value, 12);
        Assert.Equal(0.5, report.Operators[1].AchievedFraction!.Value, 12);
        Assert.Equal(0.2, report.Breakdown!.Single(k => k.Kind == OperatorKind.Gemm).Share, 12);
        Assert.Equal(0.6, report.Breakdown!.Single(k => k.Kind == OperatorKind.EmbeddingLookup).Share, 12);
        Assert.Equal(100, report.Latency!.UnattributedNs, 12);
        Assert.Equal(0.8, report.Latency.Coverage, 12);
        Assert.Equal(OperatorKind.EmbeddingLookup, report.DominantKind);
        Assert.Equal(fc.Flops + bag.Flops, report.Flops);
        // A timing that misses an operator is refused by name.
        var partial = timing with { Operators = [new OperatorTiming("fc", 1, 1)] };
        Assert.Contains("'emb'", Assert.Throws<ArgumentException>(() => Characterizer.Batch([fc, bag], 0, Limits, partial, 1)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_report_names_fields_in_snake_case_and_writes_unbounded_intensity_as_null()
    {
        var spec = new DlrmSpec(3, [4], [2, 1], InteractionKind.Dot, false,
            [new TableSpec("C1", 10, 4, Embeddings.Pooling.Sum, Embeddings.RowFormat.Fp32, 1)], "w");
        BatchReport batch = Characterizer.Batch(DlrmAccounting.Operators(spec, 2), DlrmAccounting.MaxLiveActivationBytes(spec, 2), Limits, null, 2);
        var report = new CharacterizationReport("m", "dlrm", DlrmAccounting.Parameters(spec), Limits, RunContext.Now(), [batch]);
        using var doc = System.Text.Json.JsonDocument.Parse(CharacterizationJson.Serialize(report));
        var op = doc.RootElement.GetProperty("batches")[0].GetProperty("operators").EnumerateArray()
            .Single(o => o.GetProperty("cost").GetProperty("name").GetString() == "interaction");
        Assert.Equal(System.Text.Json.JsonValueKind.Null, op.GetProperty("cost").GetProperty("flops_per_weight_byte").ValueKind);
        Assert.Equal("interaction", op.GetProperty("cost").GetProperty("kind").GetString());
        Assert.Equal(batch.MaxLiveActivationBytes, doc.RootElement.GetProperty("batches")[0].GetProperty("max_live_activation_bytes").GetInt64());
    }
}

/// <summary>The two DLRM shapes of the bound tests, small enough to write and load in a second.</summary>
internal static class Presets
{
    /// <summary>8 tables of 100k x 16 (6.4 MB each, 51 MB in all) with 40 ids per bag; MLP 13-16 and 44-8-1.</summary>
    public static readonly DemoPreset HugeTablesTinyMlp = new("huge-tables", 13, [16], [8, 1], 8, 100_000, 16, 40, "fp32", 1);

    /// <summary>Bottom 256-1024-1024-16 and top 19-1024-1024-1 around 2 tables of 64 x 16 with one id per bag.</summary>
    public static readonly DemoPreset WideMlp = new("wide-mlp", 256, [1024, 1024, 16], [1024, 1024, 1], 2, 64, 16, 1, "fp32", 1);
}

/// <summary>A demo model written to a temp directory and loaded, with its profiler.</summary>
internal sealed class Built : IDisposable
{
    private Built(DlrmModel model, string name)
    {
        Model = model;
        Profiler = new DlrmProfiler(model, name);
    }

    public DlrmModel Model { get; }
    public DlrmProfiler Profiler { get; }

    public static Built Write(DemoPreset preset)
    {
        string dir = Temp.Directory();
        DemoModel.Write(dir, preset, seed: 3);
        return new Built(DlrmModel.Load(dir), preset.Name);
    }

    public void Dispose() => Model.Dispose();
}
