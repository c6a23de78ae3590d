using System.Diagnostics;
using System.Text.Json;
using Recsys.Cli;
using Recsys.Cli.Commands;

namespace Recsys.Router.Tests;

/// <summary>`recsys rank` and `recsys demo-model` end to end on the PyTorch fixtures (tests/fixtures/dlrm).</summary>
public class RankCommandTests
{
    private static string Fixture(string config) => Path.Combine(AppContext.BaseDirectory, "fixtures", "dlrm", config);

    /// <summary>A repository models/&lt;config&gt;/1/ holding a copy of a fixture.</summary>
    private static string Repository(string config, string version = "1")
    {
        string root = Path.Combine(Path.GetTempPath(), "recsys-rank-tests", Guid.NewGuid().ToString("N"));
        string dir = Path.Combine(root, config, version);
        Directory.CreateDirectory(dir);
        foreach (string file in Directory.GetFiles(Fixture(config))) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        return root;
    }

    private static float[][] Expected(string config)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Fixture(config), "expected.json")));
        return [.. doc.RootElement.GetProperty("fp32").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray())];
    }

    private static JsonElement Rank(params string[] args)
    {
        var stdout = new StringWriter();
        Assert.Equal(0, RankCommand.Run(args, TextReader.Null, stdout));
        using JsonDocument doc = JsonDocument.Parse(stdout.ToString());
        return doc.RootElement.Clone();
    }

    [Theory]
    [InlineData("dot")]
    [InlineData("cat")]
    [InlineData("mean")]
    [InlineData("weighted")]
    public void Prints_pytorchs_scores_for_a_fixture(string config)
    {
        string models = Repository(config);
        JsonElement result = Rank("--models", models, "--model", config, "--input", Path.Combine(Fixture(config), "request.json"));
        float[][] expected = Expected(config);
        JsonElement scores = result.GetProperty("scores");
        Assert.Equal(expected.Length, scores.GetArrayLength());
        bool multi = expected[0].Length > 1;
        for (int b = 0; b < expected.Length; b++)
        {
            float[] got = multi ? [.. scores[b].EnumerateArray().Select(v => v.GetSingle())] : [scores[b].GetSingle()];
            Assert.Equal(expected[b].Length, got.Length);
            for (int e = 0; e < got.Length; e++) Assert.True(Math.Abs(got[e] - expected[b][e]) <= 1e-5 * expected[b][e], $"sample {b} event {e}: {got[e]} vs PyTorch {expected[b][e]}");
        }
    }

    [Fact]
    public void Multi_event_models_print_a_list_per_sample()
    {
        string models = Repository("multi-event");
        JsonElement scores = Rank("--models", models, "--model", "multi-event", "--input", Path.Combine(Fixture("multi-event"), "request.json")).GetProperty("scores");
        float[][] expected = Expected("multi-event");
        for (int b = 0; b < expected.Length; b++)
        {
            Assert.Equal(JsonValueKind.Array, scores[b].ValueKind);
            Assert.Equal(expected[b], scores[b].EnumerateArray().Select(v => v.GetSingle()).ToArray(), (x, y) => Math.Abs(x - y) <= 1e-5 * x);
        }
    }

    [Fact]
    public void Version_comes_from_the_flag_then_the_body_then_the_newest()
    {
        // Version 2 is "dot" with its last top bias shifted, so the two versions score differently.
        string models = Repository("dot", "2");
        string v1 = Path.Combine(models, "dot", "1");
        Directory.CreateDirectory(v1);
        foreach (string file in Directory.GetFiles(Fixture("dot"))) File.Copy(file, Path.Combine(v1, Path.GetFileName(file)));
        ShiftLastTopBias(Path.Combine(models, "dot", "2", "weights.safetensors"));
        string input = Path.Combine(Fixture("dot"), "request.json");
        float first = Expected("dot")[0][0];

        float newest = Rank("--models", models, "--model", "dot", "--input", input).GetProperty("scores")[0].GetSingle();
        float pinned = Rank("--models", models, "--model", "dot", "--version", "1", "--input", input).GetProperty("scores")[0].GetSingle();
        string body = Path.Combine(models, "body.json");
        string text = File.ReadAllText(input).TrimEnd();
        File.WriteAllText(body, text[..^1] + ", \"version\": \"1\"}");
        float fromBody = Rank("--models", models, "--model", "dot", "--input", body).GetProperty("scores")[0].GetSingle();

        Assert.True(Math.Abs(newest - first) > 1e-3, $"version 2 scored {newest}, the same as version 1");
        Assert.Equal(first, pinned, 5);
        Assert.Equal(first, fromBody, 5);
    }

    [Fact]
    public void Reads_the_body_from_stdin_with_a_dash()
    {
        string models = Repository("dot");
        var stdout = new StringWriter();
        Assert.Equal(0, RankCommand.Run(["--models", models, "--model", "dot", "--input", "-"], new StringReader(File.ReadAllText(Path.Combine(Fixture("dot"), "request.json"))), stdout));
        using JsonDocument doc = JsonDocument.Parse(stdout.ToString());
        Assert.Equal(Expected("dot")[3][0], doc.RootElement.GetProperty("scores")[3].GetSingle(), 5);
    }

    [Theory]
    [InlineData("""{"dense": [[1, 2, 3, 4, 5]], "sparse": {"C1": [[20]], "C2": [[1]], "C3": [[1]]}}""", "sparse.C1[0][0]")]
    [InlineData("""{"dense": [[1, 2, 3, 4]], "sparse": {"C1": [[1]], "C2": [[1]], "C3": [[1]]}}""", "dense[0]")]
    [InlineData("""{"dense": [[1, 2, 3, 4, 5]], "sparse": {"C1": [[1]], "C2": [[1]]}}""", "sparse.C3")]
    [InlineData("""{"dense": [[1, 2, 3, 4, 5]], """, "body")]
    public void A_bad_body_is_a_cli_error_naming_the_input_file_and_field(string body, string field)
    {
        string models = Repository("dot");
        string input = Path.Combine(models, "bad.json");
        File.WriteAllText(input, body);
        var e = Assert.Throws<CliException>(() => RankCommand.Run(["--models", models, "--model", "dot", "--input", input], TextReader.Null, new StringWriter()));
        Assert.StartsWith($"{input}: {field}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_model_file_is_a_cli_error_naming_the_file_and_field()
    {
        string models = Repository("dot");
        string modelJson = Path.Combine(models, "dot", "1", "model.json");
        File.WriteAllText(modelJson, File.ReadAllText(modelJson).Replace("\"dot\"", "\"bilinear\"", StringComparison.Ordinal));
        var e = Assert.Throws<CliException>(() => RankCommand.Run(["--models", models, "--model", "dot", "--input", Path.Combine(Fixture("dot"), "request.json")], TextReader.Null, new StringWriter()));
        Assert.Equal($"{modelJson}: interaction: 'bilinear' is not one of dot, cat", e.Message);
    }

    [Theory]
    [InlineData(new[] { "--model", "dot", "--input", "x.json" }, "--models is required")]
    [InlineData(new[] { "--models", "M", "--model", "dot", "--input", "x.json", "--bogus", "1" }, "unknown option '--bogus'")]
    [InlineData(new[] { "--models", "M", "--model", "../etc", "--input", "x.json" }, "--model: '../etc'")]
    [InlineData(new[] { "--models", "M", "--model", "dot", "--input" }, "--input needs a value")]
    public void Bad_options_are_cli_errors(string[] args, string message)
    {
        var e = Assert.Throws<CliException>(() => RankCommand.Run(args, TextReader.Null, new StringWriter()));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_model_or_version_is_a_cli_error()
    {
        string models = Repository("dot");
        string input = Path.Combine(Fixture("dot"), "request.json");
        Assert.Contains("no model 'nope'", Assert.Throws<CliException>(() => RankCommand.Run(["--models", models, "--model", "nope", "--input", input], TextReader.Null, new StringWriter())).Message, StringComparison.Ordinal);
        Assert.Contains("no version '9'", Assert.Throws<CliException>(() => RankCommand.Run(["--models", models, "--model", "dot", "--version", "9", "--input", input], TextReader.Null, new StringWriter())).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Demo_model_then_rank_scores_the_sample_request()
    {
        string models = Path.Combine(Path.GetTempPath(), "recsys-rank-tests", Guid.NewGuid().ToString("N"));
        var stdout = new StringWriter();
        Assert.Equal(0, DemoModelCommand.Run(["--out", models, "--preset", "rmc1", "--scale", "1e-4", "--storage", "int8", "--name", "ctr", "--version", "3"], stdout, new StringWriter()));
        string modelJson = Path.Combine(models, "ctr", "3", "model.json");
        Assert.Equal(modelJson, stdout.ToString().Trim());
        JsonElement scores = Rank("--models", models, "--model", "ctr", "--input", Path.Combine(models, "ctr", "3", "sample-request.json")).GetProperty("scores");
        Assert.Equal(4, scores.GetArrayLength());
        Assert.All(scores.EnumerateArray(), s => Assert.InRange(s.GetSingle(), 1e-6f, 1 - 1e-6f));
    }

    [Theory]
    [InlineData(new[] { "--out", "X", "--preset", "rmc9" }, "--preset: 'rmc9'")]
    [InlineData(new[] { "--out", "X", "--storage", "int2" }, "--storage: 'int2'")]
    [InlineData(new[] { "--out", "X", "--scale", "-1" }, "--scale")]
    [InlineData(new[] { "--out", "X", "--scale", "abc" }, "--scale: 'abc' is not a number")]
    [InlineData(new[] { "--preset", "rmc1" }, "--out is required")]
    public void Demo_model_option_errors_name_the_option(string[] args, string message)
    {
        var e = Assert.Throws<CliException>(() => DemoModelCommand.Run(args, new StringWriter(), new StringWriter()));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    /// <summary>The real binary: exit code 2 and a one-line message, no stack trace.</summary>
    [Fact]
    public async Task The_binary_exits_2_with_a_message_and_no_stack_trace()
    {
        string models = Repository("dot");
        string input = Path.Combine(models, "bad.json");
        File.WriteAllText(input, """{"dense": [[1, 2, 3, 4, 5]], "sparse": {"C1": [[1]], "C2": [[1]], "C3": [[-4]]}}""");
        var psi = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "recsys.dll"), "rank", "--models", models, "--model", "dot", "--input", input])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using Process process = Process.Start(psi)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(2, process.ExitCode);
        Assert.Equal("", await stdout);
        Assert.Equal($"recsys rank: {input}: sparse.C3[0][0]: id -4 is outside the table's rows [0, 50)", stderr.Trim());
    }

    private static void ShiftLastTopBias(string weights)
    {
        byte[] bytes = File.ReadAllBytes(weights);
        long headerLength = BitConverter.ToInt64(bytes, 0);
        using JsonDocument header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        long begin = header.RootElement.GetProperty("top_l.2.bias").GetProperty("data_offsets")[0].GetInt64();
        int at = (int)(8 + headerLength + begin);
        BitConverter.TryWriteBytes(bytes.AsSpan(at, 4), BitConverter.ToSingle(bytes, at) + 1f);
        File.WriteAllBytes(weights, bytes);
    }
}
