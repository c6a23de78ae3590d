using System.Text;
using Recsys.DenseCompute.Characterization;

namespace Recsys.Cli.Characterize;

/// <summary>
/// The terminal and Markdown forms of a <see cref="CharacterizationReport"/>: a header with the
/// parameters and machine limits, one row per batch size, then the operators of each batch size.
/// Consecutive operators with the same kind and shape (a model's identical tables) share a row,
/// with per-operator figures.
/// </summary>
internal static class ReportFormatter
{
    public static string Format(CharacterizationReport report, bool markdown)
    {
        var sb = new StringBuilder();
        ParameterSummary p = report.Parameters;
        MachineLimits m = report.Limits;
        string h = markdown ? "### " : "";
        sb.AppendLine($"{h}{report.Model} ({report.Kind})");
        if (markdown) sb.AppendLine();
        sb.AppendLine($"parameters: dense {Units.Si(p.DenseParameters)} ({Units.Si(p.DenseBytes, "B")} {p.DensePrecision}), embedding {Units.Si(p.EmbeddingParameters)} ({Units.Si(p.EmbeddingBytes, "B")} {p.EmbeddingPrecision}){Br(markdown)}");
        string gather = string.Join(", ", m.Gather.Select(g => $"{g.RowBytes} B rows {Units.Si(g.RowsPerSecond, "rows/s")}"));
        string int8 = m.Int8OpsPerSecond is { } i8 ? $", int8 {Units.Si(i8, "op/s")}" : ", int8 -";
        sb.AppendLine($"machine ({m.Source}): stream read {Units.Si(m.StreamBytesPerSecond, "B/s")}, gather {gather}, fp32 {Units.Si(m.Fp32FlopsPerSecond, "flop/s")}{int8}; fp32 balance {Units.Ratio(m.Fp32Balance, "F1")} flop/B{Br(markdown)}");
        RunContext c = report.Context;
        string clock = report.Batches.FirstOrDefault(b => b.Latency is not null)?.Latency?.Clock switch
        {
            ProfileClock.ThreadCpu => "timers read the thread's CPU time (waits for a core left out)",
            ProfileClock.Wall => "timers read wall time",
            _ => "not timed",
        };
        if (report.Workload is { } workload) sb.AppendLine($"pass: {workload}{Br(markdown)}");
        sb.AppendLine($"run: {c.Started:yyyy-MM-dd HH:mm} UTC, {c.ProcessorCount} cores, load average {c.LoadAverage ?? "unknown"} (the machine is shared: timings are noisy); {clock}");
        sb.AppendLine();
        sb.Append(BatchTable(report).Render(markdown));
        sb.AppendLine();
        sb.AppendLine("p50/p99 over all passes; per-kind columns (FC, emb, ...): shares of the mean clean pass (within 1.5x of the p10 pass), from the same passes;");
        sb.AppendLine("roofline: least time the machine limits allow (weights from DRAM); bound: the limit that roofline time is mostly spent against.");
        foreach (BatchReport batch in report.Batches)
        {
            sb.AppendLine();
            sb.AppendLine($"{h}{report.Model}, batch {batch.Batch}: operators");
            if (markdown) sb.AppendLine();
            sb.Append(OperatorTable(batch, lumpOther: report.Kind != "dlrm").Render(markdown));
        }
        if (report.Batches.Any(b => b.Operators.Any(o => o.AchievedFraction > 1)))
        {
            sb.AppendLine();
            sb.AppendLine("* faster than the roofline allows: the roofline assumes weights and rows come from DRAM, these came from cache.");
        }
        return sb.ToString();
    }

    private static string Br(bool markdown) => markdown ? "  " : "";

    private static TextTable BatchTable(CharacterizationReport report)
    {
        OperatorKind[] kinds = Columns(report);
        string[] headers = ["batch", "passes (clean)", "p50", "p99", "p50 no timers", "flops", "weight bytes", "flop/weight B", "flop/B", "max live act",
            .. kinds.Select(ShortName), "unattrib.", "roofline", "bound", "most time"];
        var table = new TextTable(headers);
        foreach (BatchReport b in report.Batches)
        {
            LatencySummary? l = b.Latency;
            double? Share(OperatorKind k) => b.Breakdown?.FirstOrDefault(s => s.Kind == k)?.Share ?? (b.Breakdown is null ? null : 0);
            string[] row = [
                b.Batch.ToString(System.Globalization.CultureInfo.InvariantCulture),
                l is null ? "-" : $"{l.Iterations} ({l.CleanIterations})",
                Units.Time(l?.P50Ns), Units.Time(l?.P99Ns), Units.Time(l?.UnbrokenP50Ns),
                Units.Si(b.Flops), Units.Si(b.WeightBytes, "B"), Units.Ratio(b.FlopsPerWeightByte), Units.Ratio(b.FlopsPerByte),
                Units.Si(b.MaxLiveActivationBytes, "B"),
                .. kinds.Select(k => Units.Percent(Share(k))),
                Units.Percent(l is null || l.MeanNs <= 0 ? null : l.UnattributedNs / l.MeanNs),
                Units.Time(b.RooflineNs), BoundName(b.Bound), b.DominantKind is { } k ? KindName(k) : "-"];
            table.Add(row);
        }
        return table;
    }

    /// <summary>One share column per operator kind the model has: DLRM's FC, embedding and interaction always, other kinds when present, other last.</summary>
    private static OperatorKind[] Columns(CharacterizationReport report)
    {
        var present = new HashSet<OperatorKind>(report.Batches.SelectMany(b => b.Operators).Select(o => o.Cost.Kind)) { OperatorKind.Gemm, OperatorKind.Other };
        if (report.Kind == "dlrm")
        {
            present.Add(OperatorKind.EmbeddingLookup);
            present.Add(OperatorKind.Interaction);
        }
        return [.. Enum.GetValues<OperatorKind>().Where(present.Contains)];
    }

    private static string ShortName(OperatorKind kind) => kind switch
    {
        OperatorKind.Gemm => "FC",
        OperatorKind.EmbeddingLookup => "emb",
        OperatorKind.Interaction => "inter",
        OperatorKind.Conv => "conv",
        OperatorKind.GroupedConv => "grouped conv",
        OperatorKind.Recurrent => "recurrent",
        OperatorKind.Attention => "attention",
        _ => "other",
    };

    /// <param name="lumpOther">
    /// ONNX graphs run hundreds of small data-movement nodes (Shape, Gather of indices, Reshape, reorders): their "other" operators
    /// are summed into one row per op type, after the operators that do the arithmetic.
    /// </param>
    private static TextTable OperatorTable(BatchReport batch, bool lumpOther)
    {
        var table = new TextTable("operator", "kind", "shape", "prec", "flops", "weight B", "act in+out", "flop/wB", "flop/B", "median", "roofline", "achieved", "of limit", "bound");
        IEnumerable<OperatorReport> listed = lumpOther ? batch.Operators.Where(o => o.Cost.Kind != OperatorKind.Other) : batch.Operators;
        foreach (List<OperatorReport> group in Groups([.. listed]))
        {
            OperatorReport first = group[0];
            OperatorCost cost = first.Cost;
            string name = group.Count == 1 ? cost.Name : $"{cost.Name}..{group[^1].Cost.Name.Split('.')[^1]} (x{group.Count}, each)";
            double? median = Mean(group.Select(r => r.MedianNs));
            double? achieved = Mean(group.Select(r => r.AchievedFlopsPerSecond));
            double? fraction = Mean(group.Select(r => r.AchievedFraction));
            table.Add(name, KindName(cost.Kind), cost.Shape, cost.Precision, Units.Si(cost.Flops), Units.Si(cost.WeightBytes, "B"),
                Units.Si(cost.ActivationBytes, "B"), Units.Ratio(cost.FlopsPerWeightByte), Units.Ratio(cost.FlopsPerByte),
                Units.Time(median), Units.Time(first.RooflineNs), achieved is { } a ? Units.Si(a, "flop/s") : "-", Units.Percent(fraction), BoundName(first.Bound) + (fraction > 1 ? " *" : ""));
        }
        if (lumpOther)
        {
            foreach (IGrouping<string, OperatorReport> op in batch.Operators.Where(o => o.Cost.Kind == OperatorKind.Other).GroupBy(o => o.Cost.Shape.Split(' ')[0]).OrderByDescending(g => g.Sum(o => o.MeanNs ?? 0)))
            {
                long flops = op.Sum(o => o.Cost.Flops), weights = op.Sum(o => o.Cost.WeightBytes), act = op.Sum(o => o.Cost.ActivationBytes);
                double? median = op.All(o => o.MedianNs is not null) ? op.Sum(o => o.MedianNs!.Value) : null;
                double roofline = op.Sum(o => o.RooflineNs);
                table.Add($"{op.Key} (x{op.Count()}, total)", "other", op.Key, op.First().Cost.Precision, Units.Si(flops), Units.Si(weights, "B"), Units.Si(act, "B"),
                    Units.Ratio(weights > 0 ? (double)flops / weights : null), Units.Ratio(weights + act > 0 ? (double)flops / (weights + act) : 0),
                    Units.Time(median), Units.Time(roofline), median is > 0 ? Units.Si(flops / (median.Value * 1e-9), "flop/s") : "-",
                    Units.Percent(median is > 0 ? roofline / median : null), "memory");
            }
        }
        return table;
    }

    private static double? Mean(IEnumerable<double?> values)
    {
        double[] v = [.. values.OfType<double>()];
        return v.Length == 0 ? null : v.Average();
    }

    private static IEnumerable<List<OperatorReport>> Groups(IReadOnlyList<OperatorReport> ops)
    {
        var group = new List<OperatorReport>();
        foreach (OperatorReport op in ops)
        {
            if (group.Count > 0 && (group[0].Cost.Kind != op.Cost.Kind || group[0].Cost.Shape != op.Cost.Shape || group[0].Cost.Kind != OperatorKind.EmbeddingLookup))
            {
                yield return group;
                group = [];
            }
            group.Add(op);
        }
        if (group.Count > 0) yield return group;
    }

    public static string KindName(OperatorKind kind) => kind switch
    {
        OperatorKind.Gemm => "FC/GEMM",
        OperatorKind.EmbeddingLookup => "embedding",
        OperatorKind.Interaction => "interaction",
        OperatorKind.Conv => "conv",
        OperatorKind.GroupedConv => "grouped conv",
        OperatorKind.Recurrent => "recurrent",
        OperatorKind.Attention => "attention",
        _ => "other",
    };

    public static string BoundName(Bound bound) => bound switch
    {
        Bound.Compute => "compute",
        Bound.Memory => "memory",
        _ => "embedding (gather)",
    };
}
