using HdrHistogram;

namespace Recsys.Cli.Bench.Reporting;

/// <summary>Latency percentiles of one run, in milliseconds.</summary>
public sealed record LatencySummary(long Count, double Mean, double P50, double P95, double P99, double P999, double P9999, double Max)
{
    public static readonly LatencySummary Empty = new(0, 0, 0, 0, 0, 0, 0, 0);

    /// <summary>(percentile, ms) pairs for a percentile chart.</summary>
    public IReadOnlyList<(double Percentile, double Ms)> Spectrum() =>
        [(50, P50), (95, P95), (99, P99), (99.9, P999), (99.99, P9999)];
}

/// <summary>
/// An HdrHistogram of latencies in microseconds, 1 µs to 10 min at 3 significant digits
/// (0.1% relative error), recorded from many response callbacks at once.
/// </summary>
public sealed class LatencyRecorder
{
    private const long HighestMicros = 600_000_000;
    private readonly LongConcurrentHistogram _histogram = new(1, HighestMicros, 3);

    public void Record(TimeSpan latency) => RecordMicros((long)latency.TotalMicroseconds);

    public void RecordMicros(long micros) => _histogram.RecordValue(Math.Clamp(micros, 1, HighestMicros));

    public long Count => _histogram.TotalCount;

    public LatencySummary Summarize()
    {
        if (_histogram.TotalCount == 0) return LatencySummary.Empty;
        HistogramBase h = _histogram.Copy();
        return new LatencySummary(
            h.TotalCount,
            h.GetMean() / 1000.0,
            h.GetValueAtPercentile(50) / 1000.0,
            h.GetValueAtPercentile(95) / 1000.0,
            h.GetValueAtPercentile(99) / 1000.0,
            h.GetValueAtPercentile(99.9) / 1000.0,
            h.GetValueAtPercentile(99.99) / 1000.0,
            h.GetMaxValue() / 1000.0);
    }
}
