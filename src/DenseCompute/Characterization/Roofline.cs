namespace Recsys.DenseCompute.Characterization;

/// <summary>What limits an operator (or a whole forward pass) on the roofline.</summary>
public enum Bound
{
    /// <summary>Arithmetic: the time at peak exceeds the time to move the bytes.</summary>
    Compute,
    /// <summary>Streaming bandwidth: weights and activations read sequentially.</summary>
    Memory,
    /// <summary>Random-row gather rate: embedding lookups.</summary>
    Embedding,
}

/// <summary>An operator's place on the roofline: its least possible time and the limit that sets it.</summary>
/// <param name="ComputeSeconds">Flops at the peak of the operator's compute unit.</param>
/// <param name="MemorySeconds">Gathered rows at the gather rate plus everything else at streaming bandwidth.</param>
public readonly record struct RooflinePoint(Bound Bound, double ComputeSeconds, double MemorySeconds)
{
    public double Seconds => Math.Max(ComputeSeconds, MemorySeconds);
}

/// <summary>
/// The roofline model: an operator cannot run faster than its flops at peak nor than its bytes
/// at the bandwidth of the path they take. Gathered embedding rows take the random-gather path,
/// everything else streams. It assumes weights come from DRAM, which overstates the cost of
/// small MLPs whose weights stay in cache between requests.
/// </summary>
public static class Roofline
{
    public static RooflinePoint Place(OperatorCost op, MachineLimits limits)
    {
        double compute = op.Flops / limits.Peak(op.Compute);
        double memory = op.IsGather
            ? op.WeightBytes / limits.GatherBytesPerSecond(op.GatherRowBytes) + op.ActivationBytes / limits.StreamBytesPerSecond
            : op.TotalBytes / limits.StreamBytesPerSecond;
        Bound bound = compute >= memory ? Bound.Compute : op.IsGather ? Bound.Embedding : Bound.Memory;
        return new RooflinePoint(bound, compute, memory);
    }

    /// <summary>The roofline's attainable flop rate at a streaming intensity: min(peak, intensity x bandwidth).</summary>
    public static double Attainable(double flopsPerByte, double peak, double bytesPerSecond) => Math.Min(peak, flopsPerByte * bytesPerSecond);

    /// <summary>
    /// A forward pass is bound by whatever its operators' roofline times add up to most: the bound
    /// whose operators take the largest share of the least possible time.
    /// </summary>
    public static Bound Classify(IEnumerable<OperatorCost> ops, MachineLimits limits)
    {
        var seconds = new double[Enum.GetValues<Bound>().Length];
        foreach (OperatorCost op in ops)
        {
            RooflinePoint p = Place(op, limits);
            seconds[(int)p.Bound] += p.Seconds;
        }
        int best = 0;
        for (int i = 1; i < seconds.Length; i++)
        {
            if (seconds[i] > seconds[best]) best = i;
        }
        return (Bound)best;
    }
}
