using System.Globalization;
using System.Text.Json;
using Recsys.DenseCompute.Accuracy;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.Cli.Commands;

/// <summary>
/// `recsys accuracy` scores one labelled set with a model at several precisions and reports AUC,
/// log loss and normalized entropy per precision, with the change against fp32 (Park et al. 2018:
/// production practice accepts well under 0.1% relative NE).
/// </summary>
public static class AccuracyCommand
{
    public const string Usage = """
        usage: recsys accuracy --models DIR --model NAME [--version V]
                               [--data FILE [--format recsys|criteo] [--limit N]]
                               [--synthetic N] [--seed S] [--base-rate R] [--write-data FILE]
                               [--variants fp32,rows-int8,dense-int8,...] [--md | --json]
          Without --data, N synthetic samples (default 20000) are drawn with labels planted by the
          model's own fp32 scores; --write-data saves them as a Recsys click TSV.
        """;

    public static Task<int> RunAsync(string[] args) => Task.FromResult(Run(args, Console.Out));

    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        if (args.Count == 1 && args[0] is "-h" or "--help")
        {
            stdout.WriteLine(Usage);
            return 0;
        }
        CliOptions options = CliOptions.Parse(args, ["models", "model", "version", "data", "format", "limit", "synthetic", "seed", "base-rate", "write-data", "variants"], ["md", "json"]);
        var repository = new ModelRepository(options.Require("models"));
        string name = options.Require("model");
        if (!ModelRepository.IsSafeName(name)) throw new CliException($"--model: '{name}' is not a plain directory name");
        string version = options.Get("version") ?? repository.NewestVersion(name) ?? throw new CliException($"--model: no model '{name}' with a model.json under {repository.Root}");
        string directory = repository.VersionDirectory(name, version);
        PrecisionVariant[] variants = ParseVariants(options.Get("variants"));

        try
        {
            DlrmSpec spec = repository.LoadSpec(name, version).RequireDlrm();
            string weights = Path.Combine(directory, spec.WeightsFile);
            ClickData data;
            string source;
            using (DlrmModel reference = DlrmModel.Load(spec, weights))
            {
                (data, source) = LoadData(options, reference);
            }
            if (options.Get("write-data") is { } outPath)
            {
                ClickTsv.Write(outPath, data);
                source += $", written to {outPath}";
            }

            var results = new List<AccuracyResult>();
            double[]? fp32 = null;
            foreach (PrecisionVariant v in variants)
            {
                double[] p;
                try
                {
                    using DlrmModel model = DlrmModel.Load(v.Apply(spec), weights);
                    p = AccuracyEvaluation.Predict(model, data, data.Calibration);
                }
                catch (ModelFileException e)
                {
                    throw new CliException($"variant {v.Name}: {e.Message}");
                }
                fp32 ??= v.Name == "fp32" ? p : null;
                results.Add(AccuracyEvaluation.Evaluate(v.Name, p, data, fp32));
            }
            Write(stdout, options, name, version, source, data, results);
            return 0;
        }
        catch (ModelFileException e)
        {
            throw new CliException(e.Message);
        }
    }

    private static PrecisionVariant[] ParseVariants(string? list)
    {
        if (list is null) return PrecisionVariant.All;
        try
        {
            PrecisionVariant[] chosen = [.. list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(PrecisionVariant.Find)];
            if (chosen.Length == 0) throw new CliException("--variants: empty list");
            // fp32 first: every other variant is compared with it.
            return chosen.Any(v => v.Name == "fp32") ? [.. chosen.OrderBy(v => v.Name == "fp32" ? 0 : 1)] : [PrecisionVariant.All[0], .. chosen];
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--variants: {e.Message.Split(" (Parameter", StringSplitOptions.None)[0]}");
        }
    }

    private static (ClickData Data, string Source) LoadData(CliOptions options, DlrmModel reference)
    {
        if (options.Get("data") is { } path)
        {
            if (options.Has("synthetic")) throw new CliException("--data and --synthetic exclude each other");
            ClickTsvFormat format = options.Get("format", "recsys") switch
            {
                "recsys" => ClickTsvFormat.Recsys,
                "criteo" => ClickTsvFormat.Criteo,
                string other => throw new CliException($"--format: '{other}' is not recsys or criteo"),
            };
            ClickData read = ClickTsv.Read(path, reference.Spec, format, options.GetInt("limit", 0, min: 0));
            return (read, $"{path} ({read.Samples:N0} samples)");
        }
        int samples = options.GetInt("synthetic", 20_000, min: 100);
        ulong seed = (ulong)options.GetLong("seed", 7, min: 0);
        double rate = options.GetDouble("base-rate", 0.25);
        if (rate is <= 0 or >= 1) throw new CliException($"--base-rate: {rate} must be in (0, 1)");
        ClickData data = PlantedClicks.Generate(reference, samples, seed, rate);
        // The spread of the teacher's logits is the signal's scale: a precision's score noise matters relative to it.
        double spread = PlantedClicks.DefaultSignal / data.Calibration.Slope;
        return (data, $"synthetic, {samples:N0} samples, seed {seed}, labels planted by the fp32 model (its logits' std {spread:G3})");
    }

    private static void Write(TextWriter stdout, CliOptions options, string name, string version, string source, ClickData data, List<AccuracyResult> results)
    {
        AccuracyResult baseline = results[0];
        if (options.Has("json"))
        {
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                json.WriteStartObject();
                json.WriteString("model", name);
                json.WriteString("version", version);
                json.WriteString("data", source);
                json.WriteNumber("samples", data.Samples);
                json.WriteNumber("base_rate", data.BaseRate);
                json.WriteStartArray("variants");
                foreach (AccuracyResult r in results)
                {
                    json.WriteStartObject();
                    json.WriteString("variant", r.Variant);
                    json.WriteNumber("auc", r.Auc);
                    json.WriteNumber("log_loss", r.LogLoss);
                    json.WriteNumber("normalized_entropy", r.NormalizedEntropy);
                    json.WriteNumber("ne_change_percent", r.NeChangePercent(baseline));
                    json.WriteNumber("max_abs_delta", r.MaxAbsDelta);
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                json.WriteEndObject();
            }
            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
            return;
        }
        bool md = options.Has("md");
        stdout.WriteLine(md ? $"**{name}/{version}**, {source}, base rate {data.BaseRate:F3}" : $"{name}/{version}: {source}, base rate {data.BaseRate:F3}");
        stdout.WriteLine();
        string[] header = ["variant", "AUC", "log loss", "NE", "NE change vs fp32", "max abs change of p"];
        var rows = results.Select(r => new[]
        {
            r.Variant,
            r.Auc.ToString("F5", CultureInfo.InvariantCulture),
            r.LogLoss.ToString("F5", CultureInfo.InvariantCulture),
            r.NormalizedEntropy.ToString("F5", CultureInfo.InvariantCulture),
            r == baseline ? "-" : SignedPercent(r.NeChangePercent(baseline)),
            r == baseline ? "-" : r.MaxAbsDelta.ToString("E2", CultureInfo.InvariantCulture),
        }).ToList();
        if (md)
        {
            stdout.WriteLine("| " + string.Join(" | ", header) + " |");
            stdout.WriteLine("|" + string.Concat(header.Select(_ => "---|")));
            foreach (string[] row in rows) stdout.WriteLine("| " + string.Join(" | ", row) + " |");
            return;
        }
        int[] widths = [.. header.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length)))];
        stdout.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))));
        foreach (string[] row in rows) stdout.WriteLine(string.Join("  ", row.Select((c, i) => c.PadRight(widths[i]))));
    }

    private static string SignedPercent(double value)
    {
        string text = value.ToString("0.0000", CultureInfo.InvariantCulture);
        return (text.StartsWith('-') ? text : "+" + text) + "%";
    }
}
