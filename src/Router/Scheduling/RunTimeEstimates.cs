using System.Numerics;

namespace Recsys.Router.Scheduling;

/// <summary>
/// Moving averages of how long one unit of a model runs, per batch-size bucket (1, 2, 3-4, 5-8, ...).
/// A size never seen is scaled linearly from the nearest bucket that was: a batch costs at most
/// proportionally more than a smaller one, so admission errs on the generous side for larger ones.
/// Not thread-safe: the scheduler calls it under its lock.
/// </summary>
internal sealed class RunTimeEstimates(double smoothing)
{
    private const int Buckets = 32;
    private readonly Dictionary<string, ModelEstimate> _models = new(StringComparer.Ordinal);

    public void Record(string model, int items, long ticks, long now)
    {
        if (!_models.TryGetValue(model, out ModelEstimate? m)) _models[model] = m = new ModelEstimate();
        int b = Bucket(items);
        if (m.Count[b] == 0)
        {
            m.Ticks[b] = ticks;
            m.Items[b] = items;
        }
        else
        {
            m.Ticks[b] += smoothing * (ticks - m.Ticks[b]);
            m.Items[b] += smoothing * (items - m.Items[b]);
        }
        m.Count[b]++;
        m.LastRun = now;
    }

    /// <summary>Stopwatch ticks one unit of <paramref name="items"/> is expected to take; 0 when the model never ran.</summary>
    public long Estimate(string model, int items)
    {
        if (!_models.TryGetValue(model, out ModelEstimate? m)) return 0;
        int b = Bucket(items);
        if (m.Count[b] > 0) return (long)m.Ticks[b];
        for (int d = 1; d < Buckets; d++)
        {
            foreach (int k in (ReadOnlySpan<int>)[b - d, b + d])
            {
                if (k is >= 0 and < Buckets && m.Count[k] > 0) return (long)(m.Ticks[k] * items / Math.Max(1, m.Items[k]));
            }
        }
        return 0;
    }

    /// <summary>
    /// The most items, up to <paramref name="max"/>, whose unit is expected to run within
    /// <paramref name="ticks"/>; at least 1 (one item cannot be split), and <paramref name="max"/>
    /// when the model never ran or when the cut would raise the cost per item more than
    /// <paramref name="maxCostRise"/> times over a full batch's: a model whose run time hardly
    /// grows with the batch (weights streamed once per run) would lose most of its throughput to
    /// small batches.
    /// </summary>
    public int ItemsWithin(string model, long ticks, int max, double maxCostRise)
    {
        long full = Estimate(model, max);
        if (max <= 1 || full == 0 || full <= ticks) return Math.Max(1, max);
        // Estimates grow with the batch (within a bucket linearly, across buckets as measured), so
        // a binary search finds the largest size that fits.
        int lo = 1, hi = max - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (Estimate(model, mid) <= ticks) lo = mid;
            else hi = mid - 1;
        }
        double perItem = Estimate(model, lo) / (double)lo, perItemFull = full / (double)max;
        return perItem <= maxCostRise * perItemFull ? lo : max;
    }

    /// <summary>Stopwatch timestamp of the model's last recorded run, or null when it never ran.</summary>
    public long? LastRun(string model) => _models.TryGetValue(model, out ModelEstimate? m) ? m.LastRun : null;

    private static int Bucket(int items) => items <= 1 ? 0 : Math.Min(Buckets - 1, 32 - BitOperations.LeadingZeroCount((uint)(items - 1)));

    private sealed class ModelEstimate
    {
        public double[] Ticks { get; } = new double[Buckets];
        public double[] Items { get; } = new double[Buckets];
        public long[] Count { get; } = new long[Buckets];
        public long LastRun { get; set; }
    }
}
