using ScottPlot;

namespace Recsys.Cli.Bench.Plot;

/// <summary>One point of a latency-vs-load curve: the offered rate and the latencies measured at it.</summary>
public sealed record CurvePoint(double Qps, double P50, double P95, double P99);

/// <summary>Latency charts through ScottPlot; the file extension picks PNG or SVG.</summary>
public static class LatencyPlot
{
    private const int Width = 900, Height = 560;

    /// <summary>p50/p95/p99 against the offered QPS (capacity and bandwidth), with the SLA line when there is one.</summary>
    /// <param name="xLabel">What CurvePoint.Qps holds, when it is not the offered rate (memory mode: rows held).</param>
    public static string SaveCurve(string path, string title, IReadOnlyList<CurvePoint> points, double? slaMs, string xLabel = "offered QPS (open-loop target)")
    {
        CurvePoint[] sorted = [.. points.OrderBy(p => p.Qps)];
        var plot = new ScottPlot.Plot();
        double[] qps = [.. sorted.Select(p => p.Qps)];
        AddSeries(plot, qps, [.. sorted.Select(p => p.P50)], "p50");
        AddSeries(plot, qps, [.. sorted.Select(p => p.P95)], "p95");
        AddSeries(plot, qps, [.. sorted.Select(p => p.P99)], "p99");
        if (slaMs is { } sla)
        {
            var line = plot.Add.HorizontalLine(sla);
            line.LegendText = $"SLA {sla} ms";
            line.LinePattern = LinePattern.Dashed;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel("latency (ms)");
        plot.ShowLegend(Alignment.UpperLeft);
        return Save(plot, path);
    }

    /// <summary>A single run's latency by percentile, the HdrHistogram way: x is 1/(1-p) on a log axis.</summary>
    public static string SavePercentiles(string path, string title, IReadOnlyList<(double Percentile, double Ms)> points)
    {
        var plot = new ScottPlot.Plot();
        double[] xs = [.. points.Select(p => Math.Log10(100.0 / Math.Max(1e-6, 100.0 - p.Percentile)))];
        AddSeries(plot, xs, [.. points.Select(p => p.Ms)], "latency");
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            [0, 1, 2, 3, 4],
            ["0%", "90%", "99%", "99.9%", "99.99%"]);
        plot.Title(title);
        plot.XLabel("percentile");
        plot.YLabel("latency (ms)");
        return Save(plot, path);
    }

    private static void AddSeries(ScottPlot.Plot plot, double[] xs, double[] ys, string label)
    {
        var scatter = plot.Add.Scatter(xs, ys);
        scatter.LegendText = label;
        scatter.MarkerSize = 6;
    }

    private static string Save(ScottPlot.Plot plot, string path)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        if (full.EndsWith(".svg", StringComparison.OrdinalIgnoreCase)) plot.SaveSvg(full, Width, Height);
        else if (full.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) plot.SavePng(full, Width, Height);
        else throw new ArgumentException($"plot file '{path}' must end in .png or .svg", nameof(path));
        return full;
    }
}
