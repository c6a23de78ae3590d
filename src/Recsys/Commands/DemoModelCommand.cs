using Recsys.DenseCompute.Models;

namespace Recsys.Cli.Commands;

/// <summary>
/// `recsys demo-model --out DIR [--preset P] [--scale X] [--storage S] [--name NAME] [--version V] [--seed N]`
/// writes DIR/NAME/V/{model.json, weights.safetensors, sample-request.json} and prints the model.json path.
/// </summary>
public static class DemoModelCommand
{
    public const string Usage = """
        usage: recsys demo-model --out DIR [--preset kaggle-small|rmc1|rmc2|rmc3] [--scale X]
                                 [--storage fp32|fp16|int8|int4] [--name NAME] [--version V] [--seed N]
          writes DIR/NAME/V/ (NAME defaults to the preset, V to 1); --scale multiplies the rows per table
        """;

    private static readonly string[] Storages = ["fp32", "fp16", "int8", "int4"];

    public static Task<int> RunAsync(string[] args) => Task.FromResult(Run(args, Console.Out, Console.Error));

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 1 && args[0] is "-h" or "--help")
        {
            stdout.WriteLine(Usage);
            return 0;
        }
        CliOptions options = CliOptions.Parse(args, ["out", "preset", "scale", "storage", "name", "version", "seed"]);
        string root = options.Require("out");
        string presetName = options.Get("preset", "kaggle-small");
        DemoPreset preset = DemoPreset.All.FirstOrDefault(p => p.Name == presetName)
            ?? throw new CliException($"--preset: '{presetName}' is not one of {string.Join(", ", DemoPreset.All.Select(p => p.Name))}");
        double scale = options.GetDouble("scale", 1.0);
        if (scale <= 0) throw new CliException($"--scale: {scale} must be > 0");
        string storage = options.GetChoice("storage", preset.Storage, Storages);
        string name = options.Get("name", preset.Name);
        string version = options.Get("version", "1");
        ulong seed = (ulong)options.GetLong("seed", 42, min: 0);
        if (!ModelRepository.IsSafeName(name)) throw new CliException($"--name: '{name}' is not a plain directory name (letters, digits, '-', '_', '.')");
        if (!ModelRepository.IsSafeName(version)) throw new CliException($"--version: '{version}' is not a plain directory name (letters, digits, '-', '_', '.')");

        string directory = new ModelRepository(root).VersionDirectory(name, version);
        var progress = new StderrProgress(stderr, $"{name}/{version}");
        string modelJson;
        try
        {
            modelJson = DemoModel.Write(directory, preset, scale, storage, seed, progress);
        }
        catch (IOException e)
        {
            throw new CliException($"cannot write {directory}: {e.Message}");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException($"cannot write {directory}: {e.Message}");
        }
        progress.Done();
        stdout.WriteLine(modelJson);
        return 0;
    }

    /// <summary>Prints a line every 10% so writing a multi-GiB preset visibly progresses; silent for small ones.</summary>
    private sealed class StderrProgress(TextWriter stderr, string label) : IProgress<double>
    {
        private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();
        private int _lastDecile;
        private bool _printed;

        public void Report(double value)
        {
            int decile = (int)(value * 10);
            if (decile <= _lastDecile) return;
            _lastDecile = decile;
            // Small models finish before anyone would read a progress line.
            if (System.Diagnostics.Stopwatch.GetElapsedTime(_started).TotalSeconds < 1 && !_printed) return;
            _printed = true;
            stderr.WriteLine($"demo-model {label}: {decile * 10}%");
        }

        public void Done()
        {
            if (_printed) stderr.WriteLine($"demo-model {label}: done in {System.Diagnostics.Stopwatch.GetElapsedTime(_started).TotalSeconds:F1} s");
        }
    }
}
