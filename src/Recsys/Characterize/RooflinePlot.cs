using Recsys.DenseCompute.Characterization;
using ScottPlot;

namespace Recsys.Cli.Characterize;

/// <summary>
/// The roofline of the machine with every measured operator on it, log-log through ScottPlot
/// (which has no log axis: values are plotted as log10 with power-of-ten tick labels).
/// x: flops per byte moved; y: achieved flop rate at the operator's median time.
/// </summary>
internal static class RooflinePlot
{
    private const int Width = 1000, Height = 640;
    private const double MinX = 0.01, MaxX = 1000;

    /// <summary>Writes DIR/&lt;model&gt;-roofline.png and .svg; returns both paths.</summary>
    public static IReadOnlyList<string> Save(string directory, CharacterizationReport report)
    {
        Directory.CreateDirectory(directory);
        ScottPlot.Plot plot = Build(report);
        string png = Path.GetFullPath(Path.Combine(directory, $"{report.Model}-roofline.png"));
        string svg = Path.ChangeExtension(png, ".svg");
        plot.SavePng(png, Width, Height);
        plot.SaveSvg(svg, Width, Height);
        return [png, svg];
    }

    private const string FontName = "DejaVu Sans";
    private static readonly string[] FontFiles = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"];
    private static readonly Lazy<bool> FontRegistered = new(RegisterFont);

    /// <summary>
    /// The Skia native build the solution pins (NativeAssets.Linux.NoDependencies) has no fontconfig,
    /// so system fonts are not found by name and every label silently vanishes; a font given by file
    /// is found. Elsewhere ScottPlot's own detection applies.
    /// </summary>
    private static bool RegisterFont()
    {
        if (!FontFiles.All(File.Exists)) return false;
        ScottPlot.Fonts.AddFontFile(FontName, FontFiles[0], bold: false, italic: false);
        ScottPlot.Fonts.AddFontFile(FontName, FontFiles[1], bold: true, italic: false);
        return true;
    }

    private static ScottPlot.Plot Build(CharacterizationReport report)
    {
        MachineLimits m = report.Limits;
        var plot = new ScottPlot.Plot();
        if (FontRegistered.Value) plot.Font.Set(FontName);
        if (m.Int8OpsPerSecond is { } int8) AddRoof(plot, $"int8 peak {Units.Si(int8, "op/s")}", int8, m.StreamBytesPerSecond, Colors.Gray);
        foreach (int rowBytes in report.Batches.SelectMany(b => b.Operators).Where(o => o.Cost.IsGather).Select(o => o.Cost.GatherRowBytes).Distinct().Order())
        {
            double bw = m.GatherBytesPerSecond(rowBytes);
            AddRoof(plot, $"random gather, {rowBytes} B rows ({Units.Si(bw, "B/s")})", m.Fp32FlopsPerSecond, bw, Colors.DarkOrange);
        }

        // Drawn last so it is on top where the int8 roof shares its bandwidth slope.
        AddRoof(plot, $"fp32 peak {Units.Si(m.Fp32FlopsPerSecond, "flop/s")}, stream {Units.Si(m.StreamBytesPerSecond, "B/s")}", m.Fp32FlopsPerSecond, m.StreamBytesPerSecond, Colors.Black);

        MarkerShape[] shapes = [MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond, MarkerShape.Cross, MarkerShape.Asterisk, MarkerShape.OpenCircle, MarkerShape.OpenSquare];
        Color[] colors = [Colors.Blue, Colors.Green, Colors.Red, Colors.Purple, Colors.Brown, Colors.Teal, Colors.Magenta, Colors.Olive];
        for (int bi = 0; bi < report.Batches.Count; bi++)
        {
            BatchReport batch = report.Batches[bi];
            foreach (IGrouping<OperatorKind, OperatorReport> kind in batch.Operators.GroupBy(o => o.Cost.Kind))
            {
                OperatorReport[] placed = [.. kind.Where(o => o.Cost.Flops > 0 && o.Cost.FlopsPerByte > 0 && o.AchievedFlopsPerSecond is > 0)];
                if (placed.Length == 0) continue;
                double[] xs = [.. placed.Select(o => Math.Log10(o.Cost.FlopsPerByte))];
                double[] ys = [.. placed.Select(o => Math.Log10(o.AchievedFlopsPerSecond!.Value))];
                var scatter = plot.Add.ScatterPoints(xs, ys);
                scatter.MarkerShape = shapes[(int)kind.Key % shapes.Length];
                scatter.MarkerSize = 9;
                scatter.Color = colors[bi % colors.Length];
                scatter.LegendText = $"{ReportFormatter.KindName(kind.Key)}, batch {batch.Batch}";
            }
        }

        plot.Axes.Bottom.TickGenerator = LogTicks();
        plot.Axes.Left.TickGenerator = LogTicks();
        double[] achieved = [.. report.Batches.SelectMany(b => b.Operators).Select(o => o.AchievedFlopsPerSecond ?? 0).Where(v => v > 0)];
        double bottom = achieved.Length == 0 ? 6 : Math.Floor(Math.Log10(achieved.Min()));
        double top = Math.Log10(Math.Max(m.Fp32FlopsPerSecond, m.Int8OpsPerSecond ?? 0)) + 0.5;
        plot.Axes.SetLimits(Math.Log10(MinX), Math.Log10(MaxX), bottom, top);
        plot.Title($"{report.Model}: roofline ({m.Source}), operators at their median time");
        plot.XLabel("arithmetic intensity (flop per byte moved: weights + activations)");
        plot.YLabel("achieved flop/s");
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    /// <summary>
    /// min(peak, intensity x bandwidth) from <see cref="MinX"/> to <see cref="MaxX"/>, in log10 space. Solid lines only: dashes come
    /// out of ScottPlot's SVG canvas as a warning on the console per line.
    /// </summary>
    private static void AddRoof(ScottPlot.Plot plot, string label, double peak, double bandwidth, Color color)
    {
        double ridge = peak / bandwidth;
        double[] xs = ridge > MinX && ridge < MaxX ? [MinX, ridge, MaxX] : [MinX, MaxX];
        double[] lx = [.. xs.Select(Math.Log10)];
        double[] ly = [.. xs.Select(x => Math.Log10(Roofline.Attainable(x, peak, bandwidth)))];
        var line = plot.Add.ScatterLine(lx, ly);
        line.LineWidth = 2;
        line.Color = color;
        line.LegendText = label;
    }

    private static ScottPlot.TickGenerators.NumericAutomatic LogTicks() => new()
    {
        MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = v => Units.Si(Math.Pow(10, Math.Round(v))).Replace(" ", "", StringComparison.Ordinal),
    };
}
