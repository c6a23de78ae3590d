namespace Recsys.DenseCompute.Characterization;

/// <summary>
/// Puts accounting, machine limits and measured times together. The server's profile endpoint and
/// the `recsys characterize` command both call <see cref="Run"/> and print the report.
/// </summary>
public static class Characterizer
{
    /// <param name="settings">Null: accounting and roofline only, nothing is timed.</param>
    public static CharacterizationReport Run(IModelProfiler profiler, IReadOnlyList<int> batches, MachineLimits limits, MeasureSettings? settings, IProgress<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(profiler);
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(limits);
        if (batches.Count == 0) throw new ArgumentException("no batch sizes to characterize", nameof(batches));
        foreach (int b in batches)
        {
            if (b <= 0) throw new ArgumentOutOfRangeException(nameof(batches), b, "batch sizes must be > 0");
        }
        RunContext context = RunContext.Now();
        var reports = new List<BatchReport>();
        foreach (int batch in batches)
        {
            progress?.Report($"batch {batch}");
            ForwardTiming? timing = settings is null ? null : profiler.Measure(batch, settings);
            reports.Add(Batch(profiler.Operators(batch), profiler.MaxLiveActivationBytes(batch), limits, timing, batch));
        }
        return new CharacterizationReport(profiler.Name, profiler.Kind, profiler.Parameters, limits, context, reports, profiler.Workload);
    }

    /// <summary>The report of one batch size from its operators and, if measured, their times.</summary>
    public static BatchReport Batch(IReadOnlyList<OperatorCost> ops, long maxLiveActivationBytes, MachineLimits limits, ForwardTiming? timing, int batch)
    {
        Dictionary<string, OperatorTiming>? byName = null;
        if (timing is not null)
        {
            byName = new Dictionary<string, OperatorTiming>(StringComparer.Ordinal);
            foreach (OperatorTiming t in timing.Operators)
            {
                if (!byName.TryAdd(t.Name, t)) throw new ArgumentException($"operator '{t.Name}' is timed twice", nameof(timing));
            }
            foreach (OperatorCost op in ops)
            {
                if (!byName.ContainsKey(op.Name)) throw new ArgumentException($"operator '{op.Name}' has a cost but no timing", nameof(timing));
            }
            if (byName.Count != ops.Count) throw new ArgumentException($"{byName.Count} operators timed, {ops.Count} accounted", nameof(timing));
        }

        var reports = new List<OperatorReport>(ops.Count);
        double rooflineNs = 0;
        foreach (OperatorCost op in ops)
        {
            RooflinePoint point = Roofline.Place(op, limits);
            double ns = point.Seconds * 1e9;
            rooflineNs += ns;
            OperatorTiming? t = byName?[op.Name];
            double? fraction = t is { MedianNs: > 0 } ? ns / t.MedianNs : null;
            reports.Add(new OperatorReport(op, point.Bound, ns, t?.MedianNs, t?.MeanNs, fraction));
        }

        long flops = ops.Sum(o => o.Flops), weightBytes = ops.Sum(o => o.WeightBytes), totalBytes = ops.Sum(o => o.TotalBytes);
        LatencySummary? latency = null;
        List<KindShare>? breakdown = null;
        OperatorKind? dominant = null;
        if (timing is not null)
        {
            double attributed = timing.Operators.Sum(o => o.MeanNs);
            latency = new LatencySummary(timing.Iterations, timing.P50Ns, timing.P99Ns, timing.MeanNs, timing.CleanIterations, timing.UnbrokenP50Ns,
                timing.UnattributedNs, timing.MeanNs > 0 ? attributed / timing.MeanNs : 0, timing.Clock);
            breakdown = [.. Enum.GetValues<OperatorKind>()
                .Select(kind => (kind, ns: reports.Where(r => r.Cost.Kind == kind).Sum(r => r.MeanNs ?? 0)))
                .Where(k => k.ns > 0 || k.kind is OperatorKind.Gemm or OperatorKind.EmbeddingLookup or OperatorKind.Interaction or OperatorKind.Other)
                .Select(k => new KindShare(k.kind, k.ns, timing.MeanNs > 0 ? k.ns / timing.MeanNs : 0))];
            dominant = breakdown.MaxBy(k => k.MeanNs)!.Kind;
        }
        return new BatchReport(batch, flops, weightBytes, totalBytes,
            weightBytes > 0 ? (double)flops / weightBytes : null,
            totalBytes > 0 ? (double)flops / totalBytes : 0,
            maxLiveActivationBytes, Roofline.Classify(ops, limits), rooflineNs, reports, latency, breakdown, dominant);
    }
}
