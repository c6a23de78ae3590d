namespace Recsys.DenseCompute.Characterization;

/// <summary>How long and how often to time a forward pass.</summary>
/// <param name="MaxIterations">Timed iterations per batch size, unless <paramref name="Budget"/> runs out first.</param>
/// <param name="MinIterations">Timed iterations even past the budget, so percentiles mean something.</param>
/// <param name="Budget">Wall time per batch size for the timed iterations.</param>
/// <param name="Threads">Threads a GEMM may use (1 matches the 1-core machine limits).</param>
/// <param name="Clock">Wall time, or the thread's CPU time on a machine too loaded for wall time to mean anything.</param>
public sealed record MeasureSettings(int MaxIterations = 300, int MinIterations = 20, int Warmup = 5, double BudgetSeconds = 2.0, int Threads = 1, ulong Seed = 7, ProfileClock Clock = ProfileClock.Wall)
{
    public void Validate()
    {
        if (MinIterations < 1) throw new ArgumentOutOfRangeException(nameof(MinIterations), MinIterations, "at least one timed iteration");
        if (MaxIterations < MinIterations) throw new ArgumentOutOfRangeException(nameof(MaxIterations), MaxIterations, $"must be >= MinIterations ({MinIterations})");
        if (Warmup < 0) throw new ArgumentOutOfRangeException(nameof(Warmup), Warmup, "cannot be negative");
        if (Threads < 1) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "at least one thread");
        if (!(BudgetSeconds >= 0)) throw new ArgumentOutOfRangeException(nameof(BudgetSeconds), BudgetSeconds, "cannot be negative");
        if (!ProfileClocks.IsSupported(Clock)) throw new PlatformNotSupportedException($"clock {Clock} needs Linux");
    }
}

/// <summary>One operator's measured time per forward pass, over the same iterations as the total.</summary>
public sealed record OperatorTiming(string Name, double MedianNs, double MeanNs);

/// <summary>
/// The measured forward passes of one batch size. Totals are timed around the whole pass, operators
/// inside it, in the same iterations. p50 and p99 are over every iteration; the means are over the
/// clean ones (no pre-emption: the profiler chooses them, see <paramref name="CleanIterations"/>),
/// the same iterations for the operators and the total, so their difference,
/// <see cref="UnattributedNs"/>, is what no operator timer saw.
/// </summary>
/// <param name="MeanNs">Mean pass over the clean iterations.</param>
/// <param name="CleanIterations">How many iterations the means are over.</param>
/// <param name="UnbrokenP50Ns">p50 of the production forward path without per-operator timers, run interleaved; null if not run.</param>
public sealed record ForwardTiming(int Batch, int Iterations, double P50Ns, double P99Ns, double MeanNs, int CleanIterations, IReadOnlyList<OperatorTiming> Operators, double? UnbrokenP50Ns, ProfileClock Clock = ProfileClock.Wall)
{
    public double UnattributedNs => MeanNs - Operators.Sum(o => o.MeanNs);
}

/// <summary>Nearest-rank percentiles.</summary>
public static class Percentile
{
    public static double Of(ReadOnlySpan<double> sorted, double p)
    {
        if (sorted.IsEmpty) throw new ArgumentException("no samples", nameof(sorted));
        if (p is < 0 or > 100) throw new ArgumentOutOfRangeException(nameof(p), p, "percentile in [0, 100]");
        int rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}

/// <summary>
/// A model the characterization can run: the accounting of its operators and a timed forward
/// pass. DLRM is <see cref="DlrmProfiler"/>; an ONNX model implements it with node costs from
/// its graph and per-node times from ONNX Runtime's profiler (operator names must match).
/// </summary>
public interface IModelProfiler
{
    string Name { get; }

    /// <summary>The model.json kind ("dlrm", "classification", "seq2seq", ...).</summary>
    string Kind { get; }

    ParameterSummary Parameters { get; }

    IReadOnlyList<OperatorCost> Operators(int batch);

    long MaxLiveActivationBytes(int batch);

    ForwardTiming Measure(int batch, MeasureSettings settings);

    /// <summary>How a request batch maps onto what is timed, when that is not one forward pass (decode steps, per-image runs); null otherwise.</summary>
    string? Workload => null;
}
