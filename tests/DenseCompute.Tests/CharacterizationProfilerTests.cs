using Recsys.DenseCompute.Characterization;

namespace Recsys.DenseCompute.Tests;

/// <summary>
/// The measured side: the profiler times every accounted operator of a real forward pass, and the
/// operator times explain the pass they were measured in. No speed is asserted.
/// </summary>
public class CharacterizationProfilerTests
{
    private static readonly MeasureSettings Quick = new(MaxIterations: 40, MinIterations: 20, Warmup: 3, BudgetSeconds: 0.5);

    [Theory]
    [InlineData("huge-tables", 1, ProfileClock.Wall)]
    [InlineData("huge-tables", 32, ProfileClock.Wall)]
    [InlineData("wide-mlp", 8, ProfileClock.Wall)]
    [InlineData("huge-tables", 128, ProfileClock.ThreadCpu)]
    public void Per_kind_breakdown_sums_to_the_measured_total_within_5_percent(string preset, int batch, ProfileClock clock)
    {
        using Built built = Built.Write(preset == "wide-mlp" ? Presets.WideMlp : Presets.HugeTablesTinyMlp);
        ForwardTiming timing = built.Profiler.Measure(batch, Quick with { Clock = clock });
        Assert.Equal(clock, timing.Clock);
        IReadOnlyList<OperatorCost> ops = built.Profiler.Operators(batch);
        Assert.Equal(ops.Select(o => o.Name), timing.Operators.Select(o => o.Name));
        Assert.All(timing.Operators, o => Assert.True(o.MedianNs > 0 && o.MeanNs > 0, $"{o.Name} was not timed"));
        Assert.InRange(timing.Iterations, Quick.MinIterations, Quick.MaxIterations);

        BatchReport report = Characterizer.Batch(ops, built.Profiler.MaxLiveActivationBytes(batch), MachineLimits.Baselines, timing, batch);
        double kinds = report.Breakdown!.Sum(k => k.MeanNs);
        Assert.True(Math.Abs(kinds - timing.MeanNs) <= 0.05 * timing.MeanNs,
            $"kinds sum to {kinds:F0} ns, the measured pass is {timing.MeanNs:F0} ns ({string.Join(", ", report.Breakdown!.Select(k => $"{k.Kind} {k.MeanNs:F0}"))})");
        Assert.True(timing.P50Ns <= timing.P99Ns);
        Assert.NotNull(timing.UnbrokenP50Ns);
    }

    [Fact]
    public void Measuring_with_two_threads_restores_the_models_thread_setting()
    {
        using Built built = Built.Write(Presets.WideMlp);
        built.Model.Dense.MaxThreads = 1;
        built.Profiler.Measure(4, Quick with { Threads = 2 });
        Assert.Equal(1, built.Model.Dense.MaxThreads);
    }
}
