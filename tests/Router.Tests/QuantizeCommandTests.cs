using System.Text.Json;
using Recsys.Cli;
using Recsys.Cli.Commands;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.Router.Tests;

/// <summary>`recsys quantize` end to end on the dot fixture: the written version serves what the report says it chose.</summary>
public class QuantizeCommandTests
{
    private static string Fixture => Path.Combine(AppContext.BaseDirectory, "fixtures", "dlrm", "dot");

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "recsys-quantize-tests", Guid.NewGuid().ToString("N"));

    private static string ModelCopy()
    {
        string dir = Path.Combine(TempDir(), "dot", "1");
        Directory.CreateDirectory(dir);
        foreach (string file in Directory.GetFiles(Fixture)) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        return dir;
    }

    [Fact]
    public void Written_model_serves_the_scores_of_a_model_built_with_the_reported_choices()
    {
        string model = ModelCopy();
        string output = TempDir();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, QuantizeCommand.Run(["--model", model, "--calibration", "synthetic:3000", "--out", output, "--max-ne-change", "0.01"], stdout, stderr));
        Assert.Contains("recsys quantize: fp32: NE", stderr.ToString(), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(output, "quantize-report.md")));
        Assert.True(File.Exists(Path.Combine(output, "weights.safetensors")));

        // Rebuild the settings from the report alone, apply them to the source spec, and load that.
        using JsonDocument report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "quantize-report.json")));
        var layers = new Dictionary<string, LayerPrecision>();
        var int8 = new Dictionary<string, Int8WeightSettings>();
        foreach (JsonElement l in report.RootElement.GetProperty("layers").EnumerateArray())
        {
            string name = l.GetProperty("layer").GetString()!;
            Assert.True(LayerPrecisions.TryParse(l.GetProperty("chosen_precision").GetString()!, out LayerPrecision p));
            layers[name] = p;
            if (p == LayerPrecision.Int8)
            {
                var range = l.GetProperty("chosen_weight_range").GetString() == "l2" ? WeightRangeMethod.L2 : WeightRangeMethod.MinMax;
                int8[name] = new Int8WeightSettings(range, l.GetProperty("chosen_outlier_density").GetDouble());
            }
        }

        string[] storage = [.. report.RootElement.GetProperty("tables").EnumerateArray().Select(t => t.GetProperty("chosen").GetString()!)];
        DlrmSpec source = ModelSpec.Load(Path.Combine(model, "model.json")).RequireDlrm();
        DlrmSpec direct = source with
        {
            Precision = new DensePrecision(LayerPrecision.Fp32, layers, int8),
            Tables = [.. source.Tables.Select((t, i) => t with { Storage = Enum.Parse<DenseCompute.Embeddings.RowFormat>(storage[i], ignoreCase: true) })],
        };
        // Something must have been quantized, or the comparison below proves nothing about the settings.
        Assert.Contains(layers.Values, p => p != LayerPrecision.Fp32);

        using DlrmModel written = DlrmModel.Load(output);
        using DlrmModel built = DlrmModel.Load(direct, Path.Combine(model, source.WeightsFile));
        for (int i = 0; i < written.Dense.BottomLayers.Count; i++) Assert.Equal(layers[$"bottom.{i}"], written.Dense.BottomLayers[i].Precision);
        for (int i = 0; i < written.Dense.TopLayers.Count; i++) Assert.Equal(layers[$"top.{i}"], written.Dense.TopLayers[i].Precision);
        RankBatch batch = new RankRequestJson(written.Spec).Parse(File.ReadAllBytes(Path.Combine(Fixture, "request.json")));
        Assert.Equal(built.Score(batch), written.Score(batch));
    }

    [Fact]
    public void Calibration_line_with_wrong_column_count_is_named()
    {
        string model = ModelCopy();
        string data = Path.Combine(Path.GetDirectoryName(model)!, "clicks.tsv");
        // dot: label, 5 dense, 3 tables = 9 columns; line 2 has 8.
        File.WriteAllLines(data, ["1\t0.1\t0.2\t0.3\t0.4\t0.5\t1\t2\t3", "0\t0.1\t0.2\t0.3\t0.4\t0.5\t1\t2"]);
        CliException e = Assert.Throws<CliException>(() => QuantizeCommand.Run(["--model", model, "--calibration", data, "--out", TempDir()], new StringWriter(), new StringWriter()));
        Assert.Contains(data, e.Message, StringComparison.Ordinal);
        Assert.Contains("line 2", e.Message, StringComparison.Ordinal);
        Assert.Contains("has 8 columns; the model needs 9", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<CliException>(() => QuantizeCommand.Run(["--model", model, "--calibration", "/nonexistent/clicks.tsv", "--out", TempDir()], new StringWriter(), new StringWriter()));
        Assert.Contains("/nonexistent/clicks.tsv", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_model_json_and_non_empty_out_are_named()
    {
        string empty = TempDir();
        Directory.CreateDirectory(empty);
        CliException e = Assert.Throws<CliException>(() => QuantizeCommand.Run(["--model", empty, "--calibration", "synthetic", "--out", TempDir()], new StringWriter(), new StringWriter()));
        Assert.Contains(Path.Combine(empty, "model.json"), e.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);

        string model = ModelCopy();
        string output = TempDir();
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "keep.txt"), "x");
        e = Assert.Throws<CliException>(() => QuantizeCommand.Run(["--model", model, "--calibration", "synthetic", "--out", output], new StringWriter(), new StringWriter()));
        Assert.Contains("--out", e.Message, StringComparison.Ordinal);
        Assert.Contains("not empty", e.Message, StringComparison.Ordinal);
        Assert.Contains("--force", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<CliException>(() => QuantizeCommand.Run(["--model", model, "--calibration", "synthetic:5", "--out", TempDir()], new StringWriter(), new StringWriter()));
        Assert.Contains("synthetic:N with N >= 100", e.Message, StringComparison.Ordinal);
    }
}
