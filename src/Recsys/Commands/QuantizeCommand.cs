using System.Text.Json;
using System.Text.Json.Nodes;
using Recsys.DenseCompute.Accuracy;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.Cli.Commands;

/// <summary>
/// `recsys quantize` chooses each Linear layer's precision and each table's row format on a labelled
/// calibration set (<see cref="PrecisionSearch"/>) and writes a copy of the model version carrying
/// them, plus quantize-report.json / .md with every layer's error, the choice and why.
/// </summary>
public static class QuantizeCommand
{
    public const string Usage = """
        usage: recsys quantize --model DIR --calibration FILE|synthetic[:N] --out DIR
                               [--format recsys|criteo] [--limit N] [--seed S] [--base-rate R]
                               [--max-ne-change 0.001] [--max-layer-error 0.1] [--layer-samples 4096]
                               [--dense-only] [--force]
          DIR is a model version directory (model.json + weights). FILE is a labelled click TSV
          (Recsys layout, or Criteo's with --format criteo); synthetic[:N] draws N samples (default
          10000) labelled by the model's own fp32 scores. A layer or table is made cheaper only if
          the model's normalized entropy stays within --max-ne-change (relative, 0.001 = 0.1%) of fp32.
          --out receives a copy of the version with the chosen settings in model.json and the reports;
          it must not exist or be empty unless --force.
        """;

    private const int DefaultSynthetic = 10_000;

    public static Task<int> RunAsync(string[] args) => Task.FromResult(Run(args, Console.Out, Console.Error));

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 1 && args[0] is "-h" or "--help")
        {
            stdout.WriteLine(Usage);
            return 0;
        }

        CliOptions options = CliOptions.Parse(args, ["model", "calibration", "out", "format", "limit", "seed", "base-rate", "max-ne-change", "max-layer-error", "layer-samples"], ["dense-only", "force"]);
        string modelDir = Path.GetFullPath(options.Require("model"));
        string calibrationArg = options.Require("calibration");
        string outDir = Path.GetFullPath(options.Require("out"));
        var search = new PrecisionSearchOptions
        {
            MaxNeChange = options.GetDouble("max-ne-change", 0.001),
            MaxLayerError = options.GetDouble("max-layer-error", 0.1),
            LayerSamples = options.GetInt("layer-samples", 4096, min: 1),
            Rows = !options.Has("dense-only"),
        };
        if (search.MaxNeChange <= 0) throw new CliException($"--max-ne-change: {search.MaxNeChange} must be > 0 (a relative change: 0.001 is 0.1%)");
        if (search.MaxLayerError <= 0) throw new CliException($"--max-layer-error: {search.MaxLayerError} must be > 0");
        if (!Directory.Exists(modelDir)) throw new CliException($"--model: {modelDir} is not a directory");
        if (string.Equals(outDir.TrimEnd('/'), modelDir.TrimEnd('/'), StringComparison.Ordinal)) throw new CliException("--out: must differ from --model (the source version is read, never rewritten)");
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any() && !options.Has("force"))
        {
            throw new CliException($"--out: {outDir} exists and is not empty (use --force to overwrite)");
        }

        void Progress(string line) => stderr.WriteLine($"recsys quantize: {line}");
        string modelJsonPath = Path.Combine(modelDir, "model.json");
        try
        {
            DlrmSpec spec = ModelSpec.Load(modelJsonPath).RequireDlrm();
            string weights = Path.Combine(modelDir, spec.WeightsFile);
            (ClickData data, string source) = LoadCalibration(options, calibrationArg, spec, weights);
            Progress($"calibration: {source}");

            QuantizationResult result;
            using (var precision = new PrecisionSearch(spec, weights, data, search, Progress))
            {
                result = precision.Run();
            }

            string model = $"{Path.GetFileName(Path.GetDirectoryName(modelDir))}/{Path.GetFileName(modelDir)}";
            WriteVersion(modelDir, outDir, modelJsonPath, result.Plan);
            File.WriteAllText(Path.Combine(outDir, "quantize-report.json"), QuantizationReport.Json(result, model, source));
            File.WriteAllText(Path.Combine(outDir, "quantize-report.md"), QuantizationReport.Markdown(result, model, source));
            // The written model.json must parse to exactly the plan, or the copy is not what was measured.
            ModelSpec.Load(Path.Combine(outDir, "model.json")).RequireDlrm();

            stdout.WriteLine($"wrote {Path.Combine(outDir, "model.json")}");
            foreach (LayerSearch l in result.Layers.OrderBy(l => Array.IndexOf([.. QuantizationPlan.LayerNames(spec)], l.Layer))) stdout.WriteLine($"  {l.Layer,-10} {l.Chosen.Name}");
            foreach (TableSearch t in result.Tables.Where(t => t.Chosen != t.Stored)) stdout.WriteLine($"  table {t.Table}: {RowLayout.Name(t.Stored)} -> {RowLayout.Name(t.Chosen)}");
            stdout.WriteLine($"  NE {result.Fp32.NormalizedEntropy:F5} (fp32) -> {result.Chosen.NormalizedEntropy:F5} ({result.Chosen.NeChangePercent(result.Fp32):+0.0000;-0.0000}%), AUC {result.Fp32.Auc:F5} -> {result.Chosen.Auc:F5}");
            return 0;
        }
        catch (ModelFileException e)
        {
            throw new CliException(e.Message);
        }
    }

    private static (ClickData Data, string Source) LoadCalibration(CliOptions options, string calibration, DlrmSpec spec, string weights)
    {
        if (calibration == "synthetic" || calibration.StartsWith("synthetic:", StringComparison.Ordinal))
        {
            int samples = DefaultSynthetic;
            if (calibration.Length > "synthetic".Length && (!int.TryParse(calibration.AsSpan("synthetic:".Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out samples) || samples < 100))
            {
                throw new CliException($"--calibration: '{calibration}' is not synthetic:N with N >= 100");
            }

            ulong seed = (ulong)options.GetLong("seed", 7, min: 0);
            double rate = options.GetDouble("base-rate", 0.25);
            if (rate is <= 0 or >= 1) throw new CliException($"--base-rate: {rate} must be in (0, 1)");
            // The teacher is the fp32 model whatever precision the source model.json asks for.
            using DlrmModel teacher = DlrmModel.Load(QuantizationPlan.Fp32Dense(spec).Apply(spec), weights);
            ClickData data = PlantedClicks.Generate(teacher, samples, seed, rate);
            return (data, $"synthetic, {samples:N0} samples, seed {seed}, labels planted by the fp32 model");
        }

        ClickTsvFormat format = options.Get("format", "recsys") switch
        {
            "recsys" => ClickTsvFormat.Recsys,
            "criteo" => ClickTsvFormat.Criteo,
            string other => throw new CliException($"--format: '{other}' is not recsys or criteo"),
        };
        ClickData read;
        try
        {
            read = ClickTsv.Read(calibration, spec, format, options.GetInt("limit", 0, min: 0));
        }
        catch (IOException e)
        {
            throw new CliException($"--calibration: {calibration}: cannot read ({e.Message})");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException($"--calibration: {calibration}: cannot read ({e.Message})");
        }

        if (read.BaseRate is <= 0 or >= 1) throw new CliException($"--calibration: {calibration}: needs both clicked (1) and unclicked (0) samples; NE and AUC are undefined otherwise");
        return (read, $"{calibration} ({read.Samples:N0} samples)");
    }

    /// <summary>Copies every file of the source version, then writes model.json with the plan in it.</summary>
    private static void WriteVersion(string source, string target, string modelJsonPath, QuantizationPlan plan)
    {
        Directory.CreateDirectory(target);
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(source, file);
            if (relative == "model.json") continue;
            string destination = Path.Combine(target, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination, overwrite: true);
        }

        JsonNode? node = JsonNode.Parse(File.ReadAllText(modelJsonPath), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        if (node is not JsonObject modelJson) throw new ModelFileException(modelJsonPath, "json", "must be an object");
        plan.WriteInto(modelJson);
        File.WriteAllText(Path.Combine(target, "model.json"), modelJson.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
