namespace Recsys.DenseCompute.Characterization;

/// <summary>Random row gathers per second for rows of one size, from a table far larger than the caches.</summary>
public sealed record GatherRate(int RowBytes, double RowsPerSecond)
{
    public double BytesPerSecond => RowBytes * RowsPerSecond;
}

/// <summary>
/// The limits an operator's time is held against, all on one core (the profiler runs one thread):
/// streaming read bandwidth, random-row gather rate by row size, fp32 FMA peak and int8 dot peak.
/// </summary>
/// <param name="Source">Where the figures come from ("probed" or "BASELINES.md").</param>
/// <param name="Int8OpsPerSecond">Null where the CPU has no int8 dot instruction .NET exposes.</param>
public sealed record MachineLimits(string Source, double StreamBytesPerSecond, IReadOnlyList<GatherRate> Gather, double Fp32FlopsPerSecond, double? Int8OpsPerSecond)
{
    /// <summary>
    /// The 1-core figures of /work/shared/BASELINES.md (huge pages and prefetch for gathers, 256-bit
    /// vpdpbusd since .NET 10 exposes only AvxVnni). Tests classify against these so they do not
    /// depend on a noisy probe.
    /// </summary>
    public static MachineLimits Baselines { get; } = new(
        "BASELINES.md (1 core)",
        StreamBytesPerSecond: 40e9,
        Gather: [new GatherRate(72, 235e6), new GatherRate(256, 155e6), new GatherRate(512, 68.5e6)],
        Fp32FlopsPerSecond: 272e9,
        Int8OpsPerSecond: 365e9);

    public double Peak(ComputeUnit unit) => unit switch
    {
        ComputeUnit.Fp32 => Fp32FlopsPerSecond,
        // Without an int8 unit the layer would run dequantized on the fp32 FMAs.
        ComputeUnit.Int8 => Int8OpsPerSecond ?? Fp32FlopsPerSecond,
        _ => throw new ArgumentOutOfRangeException(nameof(unit), unit, "unknown compute unit"),
    };

    /// <summary>Flops per streamed byte at which the fp32 roof meets the bandwidth slope.</summary>
    public double Fp32Balance => Fp32FlopsPerSecond / StreamBytesPerSecond;

    /// <summary>
    /// Gather bandwidth for rows of <paramref name="rowBytes"/>: the time per row is interpolated
    /// linearly between the measured row sizes and held at the nearest one outside them.
    /// </summary>
    public double GatherBytesPerSecond(int rowBytes)
    {
        if (rowBytes <= 0) throw new ArgumentOutOfRangeException(nameof(rowBytes), rowBytes, "row bytes must be > 0");
        if (Gather.Count == 0) return StreamBytesPerSecond;
        GatherRate[] rates = [.. Gather.OrderBy(g => g.RowBytes)];
        double secondsPerRow;
        if (rowBytes <= rates[0].RowBytes) secondsPerRow = 1 / rates[0].RowsPerSecond;
        else if (rowBytes >= rates[^1].RowBytes) secondsPerRow = 1 / rates[^1].RowsPerSecond;
        else
        {
            int i = 1;
            while (rates[i].RowBytes < rowBytes) i++;
            GatherRate lo = rates[i - 1], hi = rates[i];
            double t = (double)(rowBytes - lo.RowBytes) / (hi.RowBytes - lo.RowBytes);
            secondsPerRow = (1 - t) / lo.RowsPerSecond + t / hi.RowsPerSecond;
        }
        return rowBytes / secondsPerRow;
    }
}
