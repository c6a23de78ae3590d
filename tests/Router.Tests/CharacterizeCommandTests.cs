using System.Text.Json;
using Recsys.Cli;
using Recsys.Cli.Commands;
using Recsys.DenseCompute.Models;

namespace Recsys.Router.Tests;

/// <summary>`recsys characterize` end to end on a tiny demo model, with the BASELINES limits so no probe runs.</summary>
public class CharacterizeCommandTests
{
    private static string Repository()
    {
        string root = Path.Combine(Path.GetTempPath(), "recsys-characterize-tests", Guid.NewGuid().ToString("N"));
        DemoModel.Write(new ModelRepository(root).VersionDirectory("tiny", "1"), DemoPreset.Find("kaggle-small"), scale: 0.001);
        return root;
    }

    [Fact]
    public void Json_report_has_every_batch_and_every_operator_of_the_model()
    {
        string models = Repository();
        var stdout = new StringWriter();
        int code = CharacterizeCommand.Run(["--models", models, "--model", "tiny", "--batch", "1,8", "--json", "--no-probe", "--iterations", "20", "--seconds", "0"], stdout, new StringWriter());
        Assert.Equal(0, code);
        using JsonDocument doc = JsonDocument.Parse(stdout.ToString());
        JsonElement batches = doc.RootElement.GetProperty("batches");
        Assert.Equal([1, 8], batches.EnumerateArray().Select(b => b.GetProperty("batch").GetInt32()));
        // kaggle-small: bottom 4 layers + 26 tables + interaction + top 3 layers.
        Assert.All(batches.EnumerateArray(), b => Assert.Equal(4 + 26 + 1 + 3, b.GetProperty("operators").GetArrayLength()));
        Assert.Equal(20, batches[0].GetProperty("latency").GetProperty("iterations").GetInt32());
        Assert.Equal("BASELINES.md (1 core)", doc.RootElement.GetProperty("limits").GetProperty("source").GetString());
    }

    [Fact]
    public void Markdown_and_plot_are_written()
    {
        string models = Repository();
        string plots = Path.Combine(models, "plots");
        var stdout = new StringWriter();
        Assert.Equal(0, CharacterizeCommand.Run(["--models", models, "--model", "tiny", "--batch", "4", "--md", "--no-probe", "--iterations", "20", "--seconds", "0", "--plot", plots], stdout, new StringWriter()));
        Assert.Contains("| batch |", stdout.ToString(), StringComparison.Ordinal);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(plots, "tiny-roofline.png")).Take(4));
        string svg = File.ReadAllText(Path.Combine(plots, "tiny-roofline.svg"));
        Assert.Contains("<svg", svg, StringComparison.Ordinal);
        // Labels are drawn as text only when Skia finds a font (see RooflinePlot.RegisterFont).
        Assert.Contains("<text", svg, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_repository_or_model_is_named()
    {
        string missing = Path.Combine(Path.GetTempPath(), "recsys-characterize-tests", "does-not-exist");
        var e = Assert.Throws<CliException>(() => CharacterizeCommand.Run(["--models", missing, "--model", "rmc1"], new StringWriter(), new StringWriter()));
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
        Assert.Contains("demo-model", e.Message, StringComparison.Ordinal);
        string models = Repository();
        e = Assert.Throws<CliException>(() => CharacterizeCommand.Run(["--models", models, "--model", "rmc9"], new StringWriter(), new StringWriter()));
        Assert.Contains("no model 'rmc9'", e.Message, StringComparison.Ordinal);
        Assert.Contains("tiny", e.Message, StringComparison.Ordinal);
        Assert.Contains("--batch", Assert.Throws<CliException>(() => CharacterizeCommand.Run(["--models", models, "--model", "tiny", "--batch", "1,x"], new StringWriter(), new StringWriter())).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Onnx_models_characterize_through_the_command_with_their_kinds_as_columns()
    {
        var stdout = new StringWriter();
        string plots = Path.Combine(Path.GetTempPath(), "recsys-characterize-tests", Guid.NewGuid().ToString("N"));
        Assert.Equal(0, CharacterizeCommand.Run(["--models", VisionServer.FixtureRoot, "--model", "resnext", "--batch", "2", "--md", "--no-probe", "--iterations", "5", "--seconds", "0", "--plot", plots], stdout, new StringWriter()));
        string md = stdout.ToString();
        Assert.Contains("| grouped conv |", md, StringComparison.Ordinal);
        Assert.Contains("resnext (classification)", md, StringComparison.Ordinal);
        Assert.Contains("<text", File.ReadAllText(Path.Combine(plots, "resnext-roofline.svg")), StringComparison.Ordinal);

        stdout = new StringWriter();
        Assert.Equal(0, CharacterizeCommand.Run(["--models", Path.GetDirectoryName(Path.GetDirectoryName(TranslationServer.FixtureDirectory))!, "--model", "toy", "--batch", "1", "--json", "--no-probe", "--iterations", "3", "--seconds", "0"], stdout, new StringWriter()));
        using JsonDocument doc = JsonDocument.Parse(stdout.ToString());
        string[] kinds = [.. doc.RootElement.GetProperty("batches")[0].GetProperty("operators").EnumerateArray().Select(o => o.GetProperty("cost").GetProperty("kind").GetString()!).Distinct()];
        Assert.Contains("recurrent", kinds);
        Assert.Contains("attention", kinds);
        Assert.Contains("embedding_lookup", kinds);
    }

    [Fact]
    public void Cpu_clock_is_refused_for_an_onnx_model()
    {
        var e = Assert.Throws<CliException>(() => CharacterizeCommand.Run(["--models", VisionServer.FixtureRoot, "--model", "resnext", "--clock", "cpu", "--no-probe"], new StringWriter(), new StringWriter()));
        Assert.Contains("wall time", e.Message, StringComparison.Ordinal);
    }
}
