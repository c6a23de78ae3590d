using Recsys.DenseCompute.Accuracy;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

public sealed class AccuracyTests
{
    [Fact]
    public void Auc_equals_the_pairwise_definition_with_ties_counted_half()
    {
        var rng = new Random(3);
        int n = 400;
        // Coarse scores so many ties occur.
        double[] scores = [.. Enumerable.Range(0, n).Select(_ => Math.Round(rng.NextDouble() * 20) / 20)];
        byte[] labels = [.. scores.Select(s => rng.NextDouble() < 0.3 + 0.4 * s ? (byte)1 : (byte)0)];
        double wins = 0;
        long pairs = 0;
        for (int i = 0; i < n; i++)
        {
            if (labels[i] == 0) continue;
            for (int j = 0; j < n; j++)
            {
                if (labels[j] != 0) continue;
                pairs++;
                wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
            }
        }
        Assert.Equal(wins / pairs, ClickMetrics.Auc(scores, labels), 12);
    }

    [Fact]
    public void Predicting_the_base_rate_everywhere_has_normalized_entropy_one_and_a_good_predictor_less()
    {
        byte[] labels = [1, 0, 0, 0, 1, 0, 0, 0];
        double rate = 0.25;
        double[] flat = [.. labels.Select(_ => rate)];
        Assert.Equal(1.0, ClickMetrics.NormalizedEntropy(flat, labels), 12);
        // -(2 ln 0.8 + 6 ln 0.9) / 8, by hand.
        double[] good = [.. labels.Select(l => l == 1 ? 0.8 : 0.1)];
        double expectedLoss = -(2 * Math.Log(0.8) + 6 * Math.Log(0.9)) / 8;
        Assert.Equal(expectedLoss, ClickMetrics.LogLoss(good, labels), 12);
        double entropy = -(0.25 * Math.Log(0.25) + 0.75 * Math.Log(0.75));
        Assert.Equal(expectedLoss / entropy, ClickMetrics.NormalizedEntropy(good, labels), 12);
    }

    [Fact]
    public void Planted_labels_follow_the_teacher_and_hit_the_base_rate()
    {
        DlrmFixture fixture = DlrmFixture.Open("dot");
        using DlrmModel teacher = DlrmModel.Load(fixture.Spec, Path.Combine(fixture.Directory, fixture.Spec.WeightsFile));
        ClickData data = PlantedClicks.Generate(teacher, 6000, seed: 11, baseRate: 0.3);
        Assert.InRange(data.BaseRate, 0.27, 0.33);
        double[] p = AccuracyEvaluation.Predict(teacher, data, data.Calibration);
        double teacherAuc = ClickMetrics.Auc(p, data.Labels);
        Assert.True(teacherAuc > 0.75, $"teacher AUC {teacherAuc}");
        // The same predictions against a shuffled order of samples carry no signal.
        double[] shuffled = [.. p.OrderBy(_ => Random.Shared.Next())];
        Assert.InRange(ClickMetrics.Auc(shuffled, data.Labels), 0.45, 0.55);
        // Calibrated predictions are the probabilities labels were drawn from: NE clearly below 1.
        Assert.True(ClickMetrics.NormalizedEntropy(p, data.Labels) < 0.95);
    }

    [Fact]
    public void Int8_rows_change_scores_a_little_and_keep_the_auc()
    {
        DlrmFixture fixture = DlrmFixture.Open("dot");
        string weights = Path.Combine(fixture.Directory, fixture.Spec.WeightsFile);
        using DlrmModel fp32 = DlrmModel.Load(fixture.Spec, weights);
        ClickData data = PlantedClicks.Generate(fp32, 4000, seed: 5);
        double[] reference = AccuracyEvaluation.Predict(fp32, data, data.Calibration);
        using DlrmModel int8 = DlrmModel.Load(PrecisionVariant.Find("rows-int8").Apply(fixture.Spec), weights);
        Assert.All(int8.Tables, t => Assert.Equal(RowFormat.Int8, t.Format));
        double[] quantized = AccuracyEvaluation.Predict(int8, data, data.Calibration);
        AccuracyResult a = AccuracyEvaluation.Evaluate("fp32", reference, data);
        AccuracyResult b = AccuracyEvaluation.Evaluate("rows-int8", quantized, data, reference);
        Assert.True(b.MaxAbsDelta > 0, "int8 rows must change some score");
        Assert.True(b.MaxAbsDelta < 0.02, $"max delta {b.MaxAbsDelta}");
        Assert.InRange(b.Auc - a.Auc, -0.005, 0.005);
    }

    [Fact]
    public void Recsys_click_tsv_round_trips()
    {
        DlrmFixture fixture = DlrmFixture.Open("weighted");
        using DlrmModel model = DlrmModel.Load(fixture.Spec, Path.Combine(fixture.Directory, fixture.Spec.WeightsFile));
        ClickData data = PlantedClicks.Generate(model, 50, seed: 2);
        string path = Path.GetTempFileName();
        try
        {
            ClickTsv.Write(path, data);
            ClickData back = ClickTsv.Read(path, fixture.Spec);
            Assert.Equal(data.Labels, back.Labels);
            Assert.Equal(data.Dense, back.Dense);
            for (int t = 0; t < data.Ids.Length; t++)
            {
                Assert.Equal(data.Ids[t], back.Ids[t]);
                Assert.Equal(data.Offsets[t], back.Offsets[t]);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Criteo_lines_become_log_dense_values_and_hashed_ids()
    {
        DlrmSpec spec = CriteoShapedSpec(rows: 1000);
        string[] ints = ["5", "", "-3", "0", "100", "1", "2", "3", "4", "6", "7", "8", "9"];
        string[] cats = [.. Enumerable.Range(0, 26).Select(i => i == 4 ? "" : (0x68fd1e64 + i).ToString("x8", System.Globalization.CultureInfo.InvariantCulture))];
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "1\t" + string.Join('\t', ints) + "\t" + string.Join('\t', cats) + "\n");
            ClickData data = ClickTsv.Read(path, spec, ClickTsvFormat.Criteo);
            Assert.Equal([1], data.Labels);
            Assert.Equal((float)Math.Log(6), data.Dense[0]);
            Assert.Equal(0f, data.Dense[1]);
            Assert.Equal(0f, data.Dense[2]);
            Assert.Equal((float)Math.Log(101), data.Dense[4]);
            Assert.Equal((0x68fd1e64L + 0) % 1000, data.Ids[0][0]);
            Assert.Equal((0x68fd1e64L + 25) % 1000, data.Ids[25][0]);
            Assert.Equal(0, data.Ids[4][0]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("2\t1.0\t3", "line 1, column 1 (label)")]
    [InlineData("1\t1.0", "line 1: has 2 columns")]
    [InlineData("1\tx\t3", "line 1, column 2")]
    [InlineData("1\t1.0\t99", "line 1, column 3 (table T): '99' is not an id in [0, 10)")]
    public void Bad_click_lines_name_the_line_and_column(string line, string expected)
    {
        var spec = new DlrmSpec(1, [], [1], InteractionKind.Cat, false, [new TableSpec("T", 10, 2, Pooling.Sum, RowFormat.Fp32, 1)], "w.safetensors");
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, line + "\n");
            ModelFileException e = Assert.Throws<ModelFileException>(() => ClickTsv.Read(path, spec));
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static DlrmSpec CriteoShapedSpec(long rows) =>
        new(13, [4], [1], InteractionKind.Cat, false, [.. Enumerable.Range(0, 26).Select(i => new TableSpec($"C{i + 1}", rows, 2, Pooling.Sum, RowFormat.Fp32, 1))], "w.safetensors");
}
