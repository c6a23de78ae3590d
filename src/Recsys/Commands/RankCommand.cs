using System.Text.Json;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.Cli.Commands;

/// <summary>
/// `recsys rank --models DIR --model NAME [--version V] --input FILE` scores a ranking body
/// offline with the whole model in this process and prints {"scores": [...]} (a list per
/// sample for multi-event models). The version is --version, else the body's "version", else
/// the newest in the repository.
/// </summary>
public static class RankCommand
{
    public const string Usage = """
        usage: recsys rank --models DIR --model NAME [--version V] --input FILE|- [--max-batch N]
          prints {"scores": [...]} for the ranking body in FILE ('-' reads stdin)
        """;

    public static Task<int> RunAsync(string[] args) => Task.FromResult(Run(args, Console.In, Console.Out));

    public static int Run(IReadOnlyList<string> args, TextReader stdin, TextWriter stdout)
    {
        if (args.Count == 1 && args[0] is "-h" or "--help")
        {
            stdout.WriteLine(Usage);
            return 0;
        }
        CliOptions options = CliOptions.Parse(args, ["models", "model", "version", "input", "max-batch"]);
        var repository = new ModelRepository(options.Require("models"));
        string name = options.Require("model");
        string input = options.Require("input");
        int maxBatch = options.GetInt("max-batch", RankRequestJson.DefaultMaxBatch, min: 1);
        if (!ModelRepository.IsSafeName(name)) throw new CliException($"--model: '{name}' is not a plain directory name");

        byte[] body = ReadInput(input, stdin);
        string inputName = input == "-" ? "stdin" : input;
        try
        {
            string version = options.Get("version") ?? RankRequestJson.ReadVersion(body) ?? repository.NewestVersion(name)
                ?? throw new CliException($"--model: no model '{name}' with a model.json under {repository.Root}");
            if (!ModelRepository.IsSafeName(version)) throw new CliException($"version '{version}' is not a plain directory name");
            string directory = repository.VersionDirectory(name, version);
            if (!File.Exists(Path.Combine(directory, "model.json"))) throw new CliException($"model '{name}' has no version '{version}' (no {Path.Combine(directory, "model.json")})");
            using DlrmModel model = DlrmModel.Load(directory);
            RankBatch batch = new RankRequestJson(model.Spec, maxBatch).Parse(body);
            float[] scores = model.Score(batch);
            WriteScores(stdout, scores, batch.Batch, model.Spec.Events);
            return 0;
        }
        catch (ModelFileException e)
        {
            throw new CliException(e.Message);
        }
        catch (InvalidRequestException e)
        {
            throw new CliException($"{inputName}: {e.Field}: {ProblemOf(e)}");
        }
    }

    private static string ProblemOf(InvalidRequestException e) =>
        e.Message.StartsWith(e.Field + ": ", StringComparison.Ordinal) ? e.Message[(e.Field.Length + 2)..] : e.Message;

    private static byte[] ReadInput(string input, TextReader stdin)
    {
        if (input == "-") return System.Text.Encoding.UTF8.GetBytes(stdin.ReadToEnd());
        try
        {
            return File.ReadAllBytes(input);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--input: cannot read {input}: {e.Message}");
        }
    }

    private static void WriteScores(TextWriter stdout, float[] scores, int batch, int events)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("scores");
            for (int b = 0; b < batch; b++)
            {
                if (events == 1)
                {
                    json.WriteNumberValue(scores[b]);
                    continue;
                }
                json.WriteStartArray();
                for (int e = 0; e < events; e++) json.WriteNumberValue(scores[b * events + e]);
                json.WriteEndArray();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        stdout.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}
