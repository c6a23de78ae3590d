namespace Recsys.DenseCompute.Characterization;

/// <summary>One operator at one batch size: its cost, its place on the roofline and, when measured, how close it came.</summary>
/// <param name="RooflineNs">The least time the roofline allows.</param>
/// <param name="AchievedFraction">Roofline time over measured median: 1 means the operator runs at the limit that binds it.</param>
public sealed record OperatorReport(OperatorCost Cost, Bound Bound, double RooflineNs, double? MedianNs, double? MeanNs, double? AchievedFraction)
{
    /// <summary>Flops per second at the measured median.</summary>
    public double? AchievedFlopsPerSecond => MedianNs is > 0 ? Cost.Flops / (MedianNs.Value * 1e-9) : null;
}

/// <summary>Measured time of one operator kind per forward pass and its share of the total.</summary>
public sealed record KindShare(OperatorKind Kind, double MeanNs, double Share);

/// <summary>Whole-pass latency at one batch size and how much of it the operator timers explain.</summary>
/// <param name="MeanNs">Mean over the <paramref name="CleanIterations"/> the breakdown is taken from.</param>
/// <param name="Coverage">Sum of the operator means over the mean pass: 1 means every nanosecond is attributed.</param>
public sealed record LatencySummary(int Iterations, double P50Ns, double P99Ns, double MeanNs, int CleanIterations, double? UnbrokenP50Ns, double UnattributedNs, double Coverage, ProfileClock Clock);

/// <summary>Everything the characterization says about one batch size.</summary>
/// <param name="Bound">The roofline bound of the whole pass (see <see cref="Roofline.Classify"/>).</param>
/// <param name="DominantKind">The operator kind that took the most measured time; null when not measured.</param>
public sealed record BatchReport(
    int Batch,
    long Flops,
    long WeightBytes,
    long TotalBytes,
    double? FlopsPerWeightByte,
    double FlopsPerByte,
    long MaxLiveActivationBytes,
    Bound Bound,
    double RooflineNs,
    IReadOnlyList<OperatorReport> Operators,
    LatencySummary? Latency,
    IReadOnlyList<KindShare>? Breakdown,
    OperatorKind? DominantKind);

/// <summary>Where the run happened: the machine is shared, so its load belongs next to the numbers.</summary>
public sealed record RunContext(int ProcessorCount, string? LoadAverage, DateTimeOffset Started)
{
    public static RunContext Now() => new(Environment.ProcessorCount, ReadLoadAverage(), DateTimeOffset.UtcNow);

    private static string? ReadLoadAverage()
    {
        try
        {
            string text = File.ReadAllText("/proc/loadavg");
            return string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(3));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>The characterization of one model: parameters, machine limits, and per batch size the table, breakdown and roofline.</summary>
/// <param name="Workload">What one pass is, when not a single forward pass (see <see cref="IModelProfiler.Workload"/>).</param>
public sealed record CharacterizationReport(string Model, string Kind, ParameterSummary Parameters, MachineLimits Limits, RunContext Context, IReadOnlyList<BatchReport> Batches, string? Workload = null);
