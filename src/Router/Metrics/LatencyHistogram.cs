namespace Recsys.Router.Metrics;

/// <summary>
/// A Prometheus histogram with fixed buckets, updated lock-free from many requests at once.
/// Observations are in seconds; the sum is kept in ticks so it can be added atomically.
/// </summary>
public sealed class LatencyHistogram
{
    /// <summary>From 50 µs (a co-hosted grain call is ~14 µs) to 2.5 s (past any sane deadline).</summary>
    public static readonly double[] SecondsBuckets =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    public static readonly double[] SizeBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];

    private readonly double[] _bounds;
    private readonly long[] _counts;
    private long _sumMicro;
    private long _count;

    public LatencyHistogram(double[] bounds)
    {
        _bounds = bounds;
        _counts = new long[bounds.Length + 1];
    }

    public IReadOnlyList<double> Bounds => _bounds;
    public long Count => Interlocked.Read(ref _count);
    public double Sum => Interlocked.Read(ref _sumMicro) / 1e6;

    public void Observe(double value)
    {
        int i = 0;
        while (i < _bounds.Length && value > _bounds[i]) i++;
        Interlocked.Increment(ref _counts[i]);
        Interlocked.Add(ref _sumMicro, (long)(value * 1e6));
        Interlocked.Increment(ref _count);
    }

    /// <summary>Cumulative counts per bound, then +Inf, as the text format wants them.</summary>
    public long[] Cumulative()
    {
        var result = new long[_counts.Length];
        long running = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            running += Interlocked.Read(ref _counts[i]);
            result[i] = running;
        }
        return result;
    }
}
