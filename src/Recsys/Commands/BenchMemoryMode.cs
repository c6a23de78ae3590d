using System.Globalization;
using System.Text;
using System.Text.Json;
using Recsys.Cli.Bench;
using Recsys.Cli.Bench.Plot;
using Recsys.Cli.Bench.Reporting;
using Recsys.Cli.Bench.Workload;
using Recsys.DenseCompute.Models;

namespace Recsys.Cli.Commands;

/// <summary>`recsys bench memory`: options, the run (<see cref="MemoryCapacity"/>) and its table or JSON.</summary>
internal static class BenchMemoryMode
{
    public static async Task<int> RunAsync(CliOptions o, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        Uri url = BenchTarget.ParseUrl(o.Get("url", "http://127.0.0.1:8080"), o.Has("allow-remote"));
        string models = o.Require("models");
        if (!Directory.Exists(models)) throw new CliException($"--models: {models} does not exist (pass the server's model repository)");
        string apiKey = o.Require("api-key");
        DemoPreset preset;
        try
        {
            preset = DemoPreset.Find(o.Get("preset", "rmc1"));
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--preset: {e.Message.Split(" (Parameter", StringSplitOptions.None)[0]}");
        }
        double scale = o.GetDouble("scale", 0.01);
        if (!(scale > 0)) throw new CliException("--scale must be > 0");
        string prefix = o.Get("prefix", "memcap");
        if (!ModelRepository.IsSafeName(prefix + "-1")) throw new CliException($"--prefix: '{prefix}' is not a plain name");
        var load = new LoadPlan
        {
            Qps = o.GetDouble("qps", 50),
            Duration = BenchCommand.Duration(o, "duration", "10s"),
            Warmup = BenchCommand.Duration(o, "warmup", "3s", allowZero: true),
            MaxInFlight = o.GetInt("max-in-flight", 1024, min: 1),
            Seed = (ulong)o.GetLong("seed", 1, min: 0),
        };
        if (!(load.Qps > 0)) throw new CliException("--qps must be > 0");
        string ids = o.Get("ids", "zipf:0.99");
        _ = IdSampler.Parse(ids, 1000, 0);
        var plan = new MemoryPlan(models, apiKey, preset, scale, o.GetInt("steps", 6, min: 1), prefix, load,
            SizeDistribution.Parse(o.Get("batch-dist", "fixed:64"), 4096), ids, o.GetInt("distinct-bodies", 256, min: 1));

        using BenchTarget target = BenchTarget.Create(url, prefix + "-1", load.MaxInFlight, BenchCommand.Duration(o, "timeout", "10s"));
        IReadOnlyList<MemoryStep> steps;
        try
        {
            steps = await MemoryCapacity.RunAsync(plan, url, target.Http, o.Has("quiet") ? null : new ProgressLine(stderr), stderr, cancel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FormatException or HttpRequestException or TaskCanceledException)
        {
            stderr.WriteLine($"recsys bench memory: {e.Message}");
            return 2;
        }
        string? plot = null;
        if (o.Get("plot") is { } plotPath && steps.Count > 0)
        {
            plot = LatencyPlot.SaveCurve(plotPath, $"{plan.Preset.Name} x {plan.Scale} per step, {plan.Load.Qps:0.#} qps on the newest model",
                [.. steps.Select(s => new CurvePoint(s.TotalRows / 1e6, s.Load.Latency.P50, s.Load.Latency.P95, s.Load.Latency.P99))], null, "rows held by the silos (millions)");
        }
        if (o.Has("json")) WriteJson(stdout, plan, steps);
        else WriteTable(stdout, plan, steps);
        if (plot is not null && !o.Has("json")) stdout.WriteLine($"plot: {plot}");
        return 0;
    }

    private static void WriteTable(TextWriter stdout, MemoryPlan plan, IReadOnlyList<MemoryStep> steps)
    {
        stdout.WriteLine($"memory capacity: +1 {plan.Preset.Name} x {plan.Scale} per step, {plan.Load.Qps:0.#} qps on the newest model, ids {plan.Ids}");
        string[] header = ["step", "rows held", "resident rows", "rows / resident GB", "new model resident", "hit rate", "p50 ms", "p99 ms", "ok", "errors"];
        var rows = steps.Select(s => new[]
        {
            s.Step.ToString(CultureInfo.InvariantCulture),
            s.TotalRows.ToString("N0", CultureInfo.InvariantCulture),
            s.ResidentRows.ToString("N0", CultureInfo.InvariantCulture),
            s.RowsPerResidentGb.ToString("N0", CultureInfo.InvariantCulture),
            Percent(s.ModelResidentFraction),
            Percent(s.ModelHitRate),
            s.Load.Latency.P50.ToString("F2", CultureInfo.InvariantCulture),
            s.Load.Latency.P99.ToString("F2", CultureInfo.InvariantCulture),
            s.Load.Ok.ToString(CultureInfo.InvariantCulture),
            s.Load.ErrorCount == 0 ? "0" : string.Join(",", s.Load.Errors.Where(e => e.Value > 0).Select(e => $"{e.Key}:{e.Value}")),
        }).ToList();
        int[] widths = [.. header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length)))];
        stdout.WriteLine(string.Join("  ", header.Select((h, i) => h.PadLeft(widths[i]))));
        foreach (string[] row in rows) stdout.WriteLine(string.Join("  ", row.Select((c, i) => c.PadLeft(widths[i]))));
        if (steps.Count > 1 && steps[0].Load.Latency.P99 > 0)
        {
            MemoryStep first = steps[0], last = steps[^1];
            stdout.WriteLine($"p99 {first.Load.Latency.P99:F2} ms -> {last.Load.Latency.P99:F2} ms ({last.Load.Latency.P99 / first.Load.Latency.P99:F2}x) as the newest model went from {first.ModelResidentFraction:P0} to {last.ModelResidentFraction:P0} resident");
        }
    }

    /// <summary>NaN is a statistic the server did not report in time.</summary>
    private static string Percent(double fraction) => double.IsNaN(fraction) ? "unknown" : fraction.ToString("P1", CultureInfo.InvariantCulture);

    private static void WriteJson(TextWriter stdout, MemoryPlan plan, IReadOnlyList<MemoryStep> steps)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("mode", "memory");
            json.WriteString("preset", plan.Preset.Name);
            json.WriteNumber("scale", plan.Scale);
            json.WriteNumber("qps", plan.Load.Qps);
            json.WriteStartArray("steps");
            foreach (MemoryStep s in steps)
            {
                json.WriteStartObject();
                json.WriteNumber("step", s.Step);
                json.WriteString("model", s.Model);
                json.WriteNumber("model_rows", s.ModelRows);
                json.WriteNumber("row_bytes", s.RowBytes);
                json.WriteNumber("rows_held", s.TotalRows);
                json.WriteNumber("resident_rows", s.ResidentRows);
                json.WriteNumber("resident_bytes", s.ResidentBytes);
                json.WriteNumber("rows_per_resident_gb", s.RowsPerResidentGb);
                NumberOrNull(json, "model_resident_fraction", s.ModelResidentFraction);
                NumberOrNull(json, "model_hit_rate", s.ModelHitRate);
                json.WriteNumber("qps", s.Load.Qps);
                json.WriteNumber("samples_per_s", Math.Round(s.Load.SamplesPerSecond, 1));
                ReportWriter.WriteLatency(json, s.Load.Latency);
                json.WriteNumber("ok", s.Load.Ok);
                json.WriteNumber("errors", s.Load.ErrorCount);
                json.WriteStartObject("errors_by_status");
                foreach ((string status, long count) in s.Load.Errors) json.WriteNumber(status, count);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        stdout.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void NumberOrNull(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsNaN(value)) json.WriteNull(name);
        else json.WriteNumber(name, value);
    }
}
