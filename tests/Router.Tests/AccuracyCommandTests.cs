using System.Text.Json;
using Recsys.Cli;
using Recsys.Cli.Commands;
using Recsys.DenseCompute.Accuracy;
using Recsys.DenseCompute.Dlrm;

namespace Recsys.Router.Tests;

/// <summary>`recsys accuracy` end to end on the dot fixture: the report's numbers are the library's on the same data.</summary>
public class AccuracyCommandTests
{
    private static string Repository()
    {
        string fixture = Path.Combine(AppContext.BaseDirectory, "fixtures", "dlrm", "dot");
        string root = Path.Combine(Path.GetTempPath(), "recsys-accuracy-tests", Guid.NewGuid().ToString("N"));
        string dir = Path.Combine(root, "dot", "1");
        Directory.CreateDirectory(dir);
        foreach (string file in Directory.GetFiles(fixture)) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        return root;
    }

    [Fact]
    public void Json_report_matches_the_metrics_computed_on_the_written_data()
    {
        string models = Repository();
        string data = Path.Combine(models, "clicks.tsv");
        var stdout = new StringWriter();
        Assert.Equal(0, AccuracyCommand.Run(["--models", models, "--model", "dot", "--synthetic", "3000", "--variants", "rows-int8", "--write-data", data, "--json"], stdout));
        using JsonDocument doc = JsonDocument.Parse(stdout.ToString());
        JsonElement[] variants = [.. doc.RootElement.GetProperty("variants").EnumerateArray()];
        Assert.Equal(["fp32", "rows-int8"], variants.Select(v => v.GetProperty("variant").GetString()));

        // Recompute fp32 AUC from the written file (labels) and the model: without calibration the
        // AUC is the same (the calibration map is monotone), so the report's AUC must match.
        using DlrmModel model = DlrmModel.Load(Path.Combine(models, "dot", "1"));
        ClickData written = ClickTsv.Read(data, model.Spec);
        double[] p = AccuracyEvaluation.Predict(model, written, ScoreCalibration.Identity);
        Assert.Equal(ClickMetrics.Auc(p, written.Labels), variants[0].GetProperty("auc").GetDouble(), 9);
        Assert.True(variants[1].GetProperty("max_abs_delta").GetDouble() > 0);
    }

    [Fact]
    public void Unknown_variant_and_missing_data_file_are_named()
    {
        string models = Repository();
        CliException e = Assert.Throws<CliException>(() => AccuracyCommand.Run(["--models", models, "--model", "dot", "--variants", "int7"], new StringWriter()));
        Assert.Contains("--variants: unknown precision variant 'int7'", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<CliException>(() => AccuracyCommand.Run(["--models", models, "--model", "dot", "--data", "/nonexistent/clicks.tsv"], new StringWriter()));
        Assert.Contains("/nonexistent/clicks.tsv", e.Message, StringComparison.Ordinal);
    }
}
