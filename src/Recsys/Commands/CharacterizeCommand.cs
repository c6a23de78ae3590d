using System.Globalization;
using Recsys.Cli.Characterize;
using Recsys.DenseCompute.Characterization;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Profiling;

namespace Recsys.Cli.Commands;

/// <summary>
/// `recsys characterize --models DIR --model NAME [--batch 1,16,64,256] [--md|--json] [--plot DIR]`
/// loads a model, probes this machine's limits, times the model operator by operator at each batch
/// size and prints parameters, intensity, latency, the time breakdown and each operator's place on
/// the roofline. DLRM models are profiled on our kernels, ONNX models (classification, detection,
/// video, seq2seq) through ONNX Runtime's profiler (<see cref="OnnxProfiler"/>).
/// </summary>
public static class CharacterizeCommand
{
    public const string Usage = """
        usage: recsys characterize --models DIR --model NAME [--version V] [--batch 1,16,64,256]
                                   [--md | --json] [--plot DIR] [--iterations N] [--seconds S]
                                   [--threads N] [--clock wall|cpu] [--no-probe] [--no-timing]
          --batch       batch sizes to measure (default 1,16,64,256)
          --md, --json  Markdown or JSON instead of the terminal table
          --plot DIR    write DIR/NAME-roofline.png and .svg
          --iterations  timed forward passes per batch size at most (default 300; at least 20)
          --seconds     time budget per batch size (default 2)
          --threads     threads per GEMM or ONNX Runtime intra-op threads (default 1, as served and
                        as the 1-core machine limits assume)
          --clock       wall (default) or cpu: the thread's CPU time, for a machine so loaded that
                        long operators mostly wait for a core (a system call per reading; DLRM only)
          --no-probe    use the BASELINES.md limits instead of probing this machine (saves ~3 s)
          --no-timing   accounting and roofline only, no forward passes
          `recsys demo-model --out DIR --preset rmc1` writes a model to try it on
        """;

    public static Task<int> RunAsync(string[] args) => Task.FromResult(Run(args, Console.Out, Console.Error));

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 1 && args[0] is "-h" or "--help")
        {
            stdout.WriteLine(Usage);
            return 0;
        }
        CliOptions options = CliOptions.Parse(args, ["models", "model", "version", "batch", "plot", "iterations", "seconds", "threads", "clock"], ["md", "json", "no-probe", "no-timing"]);
        string root = options.Require("models");
        string name = options.Require("model");
        if (options.Has("md") && options.Has("json")) throw new CliException("--md and --json are exclusive: pick one output format");
        int[] batches = ParseBatches(options.Get("batch", "1,16,64,256"));
        int iterations = options.GetInt("iterations", 300, min: 1);
        double seconds = options.GetDouble("seconds", 2.0);
        if (seconds < 0) throw new CliException($"--seconds: {seconds} must be >= 0");
        int threads = options.GetInt("threads", 1, min: 1);
        ProfileClock clock = options.GetChoice("clock", "wall", ["wall", "cpu"]) == "cpu" ? ProfileClock.ThreadCpu : ProfileClock.Wall;
        if (clock == ProfileClock.ThreadCpu && !OperatingSystem.IsLinux()) throw new CliException("--clock cpu needs Linux (CLOCK_THREAD_CPUTIME_ID)");
        if (!ModelRepository.IsSafeName(name)) throw new CliException($"--model: '{name}' is not a plain directory name");
        if (!Directory.Exists(root)) throw new CliException($"--models: no model repository at {Path.GetFullPath(root)} (`recsys demo-model --out {root} --preset rmc1` writes one)");

        var repository = new ModelRepository(root);
        string version = options.Get("version") ?? repository.NewestVersion(name)
            ?? throw new CliException($"--model: no model '{name}' with a model.json under {repository.Root} (models there: {Listing(repository)})");
        if (!ModelRepository.IsSafeName(version)) throw new CliException($"--version: '{version}' is not a plain directory name");
        string directory = repository.VersionDirectory(name, version);
        if (!File.Exists(Path.Combine(directory, "model.json"))) throw new CliException($"model '{name}' has no version '{version}' (no {Path.Combine(directory, "model.json")})");

        var progress = new Progress(stderr);
        try
        {
            ModelSpec spec = ModelSpec.Load(Path.Combine(directory, "model.json"));
            if (!ModelProfilers.Supports(spec.Kind)) throw new CliException($"model '{name}' is of kind '{spec.Kind}', which characterize cannot profile (dlrm, classification, detection, video, seq2seq)");
            bool onnx = spec.Dlrm is null;
            if (onnx && clock == ProfileClock.ThreadCpu) throw new CliException($"--clock cpu: model '{name}' runs in ONNX Runtime, whose profiler reads wall time only");
            progress.Report($"loading {name}/{version}");
            using OpenedProfiler opened = ModelProfilers.Open(directory, name);
            MachineLimits limits = options.Has("no-probe") ? MachineLimits.Baselines : MachineProbes.Run(progress: progress);
            MeasureSettings? settings = options.Has("no-timing") ? null : new MeasureSettings(MaxIterations: Math.Max(iterations, 1), MinIterations: Math.Min(20, iterations), BudgetSeconds: seconds, Threads: threads, Clock: clock);
            CharacterizationReport report = Characterizer.Run(opened.Profiler, batches, limits, settings, progress);

            if (options.Has("json")) stdout.WriteLine(CharacterizationJson.Serialize(report));
            else stdout.Write(ReportFormatter.Format(report, markdown: options.Has("md")));
            if (options.Get("plot") is { } plotDir)
            {
                if (settings is null) stderr.WriteLine("characterize: --plot with --no-timing draws only the roofs (no operator was measured)");
                foreach (string path in RooflinePlot.Save(plotDir, report)) stderr.WriteLine($"characterize: wrote {path}");
            }
            return 0;
        }
        catch (ModelFileException e)
        {
            throw new CliException(e.Message);
        }
    }

    private static int[] ParseBatches(string text)
    {
        var batches = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int b) || b <= 0) throw new CliException($"--batch: '{part}' is not a positive integer (e.g. --batch 1,16,64,256)");
            if (batches.Contains(b)) throw new CliException($"--batch: {b} given twice");
            batches.Add(b);
        }
        return batches.Count > 0 ? [.. batches] : throw new CliException("--batch: no batch sizes given");
    }

    private static string Listing(ModelRepository repository)
    {
        IReadOnlyList<string> names = repository.ModelNames();
        return names.Count == 0 ? "none" : string.Join(", ", names);
    }

    /// <summary>Progress lines on stderr so stdout stays a clean table or JSON document.</summary>
    private sealed class Progress(TextWriter stderr) : IProgress<string>
    {
        public void Report(string value) => stderr.WriteLine($"characterize: {value}");
    }
}
