using Recsys.DenseCompute.Characterization;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Profiling;

namespace Recsys.OnnxModels.Tests;

/// <summary>
/// ONNX models in the characterization: node accounting against flops derived by hand from the
/// fixture graphs' layer shapes (tools/make_vision_fixtures.py, make_seq2seq_fixtures.py), parameter
/// counts against the initializers (summed with the onnx package: sum of prod(dims) over
/// graph.initializer), and the profiler's times against the pass they were measured in. No speed is asserted.
/// </summary>
public class CharacterizationOnnxTests
{
    private static readonly MeasureSettings Quick = new(MaxIterations: 30, MinIterations: 20, Warmup: 3, BudgetSeconds: 0.5);

    private static OnnxProfiler Vision(string name) => OnnxWorkloads.Profiler(ModelSpec.Load(VisionFixtures.ModelJson(name)), name);

    private static OnnxProfiler Toy() => OnnxWorkloads.Profiler(ModelSpec.Load(Path.Combine(Seq2SeqFixture.Directory, "model.json")), "toy");

    [Fact]
    public void Conv_grouped_conv_and_gemm_of_resnext_have_hand_derived_flops()
    {
        IReadOnlyList<OperatorCost> ops = Vision("resnext").Operators(2);
        // Stem: 3 -> 32 channels, 3x3, stride 2 on 64x64 -> 32x32, bias; batch 2.
        OperatorCost stem = Single(ops, o => o.Kind == OperatorKind.Conv && o.Shape.StartsWith("3->32 k3x3", StringComparison.Ordinal));
        Assert.Equal(2L * 2 * 32 * (32 * 32) * 3 * 9 + 2L * 32 * 32 * 32, stem.Flops);
        Assert.Equal((32L * 3 * 9 + 32) * 4, stem.WeightBytes);
        // layer1.conv2: 64 -> 64, 3x3, 32 groups (2 input channels per group), 32x32 out.
        OperatorCost grouped = Single(ops, o => o.Kind == OperatorKind.GroupedConv && o.Shape.StartsWith("64->64 k3x3 g32", StringComparison.Ordinal) && o.Shape.EndsWith("out 32x32", StringComparison.Ordinal));
        Assert.Equal(2L * 2 * 64 * (32 * 32) * 2 * 9 + 2L * 64 * 32 * 32, grouped.Flops);
        Assert.Equal((64L * 2 * 9 + 64) * 4, grouped.WeightBytes);
        // fc: 128 -> 10 with bias.
        OperatorCost fc = Single(ops, o => o.Kind == OperatorKind.Gemm);
        Assert.Equal(2L * 2 * 128 * 10 + 2 * 10, fc.Flops);
        Assert.Equal((128L * 10 + 10) * 4, fc.WeightBytes);
        Assert.Equal(2L * 128 * 4, fc.ActivationBytesIn);
        Assert.Equal(2L * 10 * 4, fc.ActivationBytesOut);
    }

    [Fact]
    public void Depthwise_conv_of_the_detector_is_grouped_with_one_channel_per_group()
    {
        IReadOnlyList<OperatorCost> ops = Vision("detector").Operators(1);
        OperatorCost[] depthwise = [.. ops.Where(o => o.Shape.Contains("depthwise", StringComparison.Ordinal))];
        Assert.Equal(2, depthwise.Length);
        Assert.All(depthwise, d => Assert.Equal(OperatorKind.GroupedConv, d.Kind));
        // stage3.dw: 32 channels, 3x3, stride 2, 32x32 -> 16x16, one input channel per group.
        OperatorCost dw = Single(depthwise, o => o.Shape.StartsWith("32->32 k3x3 g32", StringComparison.Ordinal) && o.Shape.EndsWith("out 16x16", StringComparison.Ordinal));
        Assert.Equal(2L * 32 * (16 * 16) * 1 * 9 + 32L * 16 * 16, dw.Flops);
        // Low intensity is the point (Park et al.): far below a dense conv of the same size.
        Assert.True(dw.FlopsPerByte < 2, $"depthwise at {dw.FlopsPerByte:F2} flop/B");
    }

    [Fact]
    public void Gru_encoder_and_decoder_attention_have_hand_derived_flops()
    {
        OnnxProfiler toy = Toy();
        IReadOnlyList<OperatorCost> ops = toy.Operators(1);
        // Encoder GRU: 32 source steps, embedding 32 -> hidden 64, one direction, both biases.
        OperatorCost gru = Single(ops, o => o.Kind == OperatorKind.Recurrent);
        Assert.StartsWith("encoder:", gru.Name, StringComparison.Ordinal);
        Assert.Equal(32L * (2 * 3 * 64 * (32 + 64) + 2 * 3 * 64), gru.Flops);
        // Decoder: 24 steps x beam 4 rows. scores = enc_out[4, 32, 64] · state[4, 64, 1] and context = p[4, 1, 32] · enc_out[4, 32, 64]: 2·|out|·K per step.
        OperatorCost[] attention = [.. ops.Where(o => o.Kind == OperatorKind.Attention && o.Name.StartsWith("decoder:", StringComparison.Ordinal))];
        Assert.Contains(attention, o => o.Flops == 24L * 2 * (4 * 32 * 1) * 64);
        Assert.Contains(attention, o => o.Flops == 24L * 2 * (4 * 1 * 64) * 32);
        Assert.Contains(attention, o => o.Shape.StartsWith("Softmax", StringComparison.Ordinal));
        // Embedding lookups: one 32-float row per token, 4 rows per step.
        OperatorCost lookup = Single(ops, o => o.Kind == OperatorKind.EmbeddingLookup && o.Name.StartsWith("decoder:", StringComparison.Ordinal));
        Assert.Equal(24L * 4 * 32 * 4, lookup.WeightBytes);
        Assert.Equal(32 * 4, lookup.GatherRowBytes);
    }

    [Theory]
    [InlineData("resnext", 88074L, 0L)]
    [InlineData("detector", 248209L, 0L)]
    [InlineData("video3d", 18341L, 0L)]
    [InlineData("video-frames", 88074L, 0L)]
    public void Vision_parameters_are_the_graph_initializers(string model, long dense, long embedding)
    {
        ParameterSummary p = Vision(model).Parameters;
        Assert.Equal(dense, p.DenseParameters);
        Assert.Equal(embedding, p.EmbeddingParameters);
        Assert.Equal(dense * 4, p.DenseBytes);
        Assert.Equal("fp32", p.DensePrecision);
    }

    [Fact]
    public void Seq2seq_parameters_split_the_embedding_tables_from_the_dense_weights()
    {
        // encoder 29824 + decoder 51926 initializer values; each graph has a 214 x 32 embedding.
        ParameterSummary p = Toy().Parameters;
        Assert.Equal(2L * 214 * 32, p.EmbeddingParameters);
        Assert.Equal(29824L + 51926 - 2 * 214 * 32, p.DenseParameters);
    }

    [Fact]
    public void Breakdown_sums_to_the_measured_pass_within_5_percent()
    {
        // At batch 32 the kernels dwarf ONNX Runtime's per-node profiling cost, which stays unattributed.
        OnnxProfiler profiler = Vision("resnext");
        ForwardTiming timing = profiler.Measure(32, Quick with { MinIterations = 10 });
        IReadOnlyList<OperatorCost> ops = profiler.Operators(32);
        Assert.Equal(ops.Select(o => o.Name), timing.Operators.Select(o => o.Name));
        BatchReport report = Characterizer.Batch(ops, profiler.MaxLiveActivationBytes(32), MachineLimits.Baselines, timing, 32);
        double kinds = report.Breakdown!.Sum(k => k.MeanNs);
        Assert.True(kinds <= timing.MeanNs * 1.0001, $"nodes {kinds:F0} ns are nested in the runs ({timing.MeanNs:F0} ns)");
        Assert.True(kinds >= 0.95 * timing.MeanNs,
            $"kinds sum to {kinds:F0} ns, the measured pass is {timing.MeanNs:F0} ns ({string.Join(", ", report.Breakdown!.Select(k => $"{k.Kind} {k.MeanNs:F0}"))})");
        Assert.NotNull(timing.UnbrokenP50Ns);
        Assert.True(timing.P50Ns <= timing.P99Ns);
    }

    [Theory]
    [InlineData("resnext", OperatorKind.GroupedConv)]
    [InlineData("detector", OperatorKind.GroupedConv)]
    [InlineData("video3d", OperatorKind.GroupedConv)]
    [InlineData("video-frames", OperatorKind.Conv)]
    public void Vision_fixtures_characterize_end_to_end(string model, OperatorKind expectedKind)
    {
        OnnxProfiler profiler = Vision(model);
        CharacterizationReport report = Characterizer.Run(profiler, [1, 2], MachineLimits.Baselines, Quick with { MaxIterations = 5, MinIterations = 3, Warmup = 1 });
        Assert.Equal(2, report.Batches.Count);
        foreach (BatchReport b in report.Batches)
        {
            Assert.Contains(b.Operators, o => o.Cost.Kind == expectedKind);
            Assert.All(b.Operators, o => Assert.NotNull(o.MedianNs));
            Assert.True(b.Flops > 0 && b.MaxLiveActivationBytes > 0);
            Assert.Equal(b.Flops, b.Operators.Sum(o => o.Cost.Flops));
        }
        // Twice the batch, twice the work: every item runs the same graph.
        Assert.Equal(2 * report.Batches[0].Flops, report.Batches[1].Flops);
        Assert.NotNull(report.Workload);
    }

    [Fact]
    public void Seq2seq_fixture_characterizes_encoder_once_and_decoder_per_step()
    {
        OnnxProfiler profiler = Toy();
        CharacterizationReport report = Characterizer.Run(profiler, [1], MachineLimits.Baselines, Quick with { MaxIterations = 5, MinIterations = 3, Warmup = 1 });
        BatchReport b = report.Batches[0];
        Assert.Contains(b.Operators, o => o.Cost.Kind == OperatorKind.Recurrent);
        Assert.All(b.Operators.Where(o => o.Cost.Name.StartsWith("decoder:", StringComparison.Ordinal)), o => Assert.EndsWith("x24 runs", o.Cost.Shape, StringComparison.Ordinal));
        Assert.DoesNotContain(b.Operators, o => o.Cost.Name.StartsWith("encoder:", StringComparison.Ordinal) && o.Cost.Shape.EndsWith("runs", StringComparison.Ordinal));
        Assert.Contains("24 steps", report.Workload, StringComparison.Ordinal);
        Assert.All(b.Operators, o => Assert.NotNull(o.MeanNs));
    }

    [Fact]
    public void Thread_cpu_clock_is_refused_for_onnx_runtime()
    {
        var e = Assert.Throws<NotSupportedException>(() => Vision("resnext").Measure(1, Quick with { Clock = ProfileClock.ThreadCpu }));
        Assert.Contains("wall time", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_that_is_not_onnx_is_named()
    {
        string path = Path.Combine(Path.GetTempPath(), $"not-onnx-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, [0x0A, 0xFF, 0xFF, 0xFF, 0x0F]);
        var e = Assert.Throws<ModelFileException>(() => OnnxGraphFile.Read(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        File.Delete(path);
    }

    private static OperatorCost Single(IEnumerable<OperatorCost> ops, Func<OperatorCost, bool> match)
    {
        OperatorCost[] found = [.. ops.Where(match)];
        Assert.True(found.Length == 1, $"{found.Length} operators match: {string.Join("; ", ops.Select(o => $"{o.Name} {o.Kind} {o.Shape}"))}");
        return found[0];
    }
}
