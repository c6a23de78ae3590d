using Recsys.DenseCompute.Accuracy;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Tests;

/// <summary>
/// The greedy precision search on a small DLRM whose first bottom layer is planted to defeat every
/// reduced precision: it reads a dense feature of magnitude 1e-5 through weights of magnitude 1e5.
/// fp16 cannot hold the weights (|w| > 65504), and int8 activations quantized over the batch's [0, 2]
/// range round that feature to 0, dropping a term as large as the others.
/// </summary>
public class PrecisionSearchTests
{
    private const int DenseFeatures = 4;
    private const int Samples = 3000;

    [Fact]
    public void Planted_layer_stays_fp32_while_the_others_are_quantized()
    {
        (DlrmSpec spec, string weights) = WritePlantedModel();
        ClickData data = Calibration(spec, weights);
        // No layer-error gate: the model's NE alone must keep the planted layer fp32.
        var options = new PrecisionSearchOptions { MaxLayerError = double.MaxValue, Rows = false };
        using var search = new PrecisionSearch(spec, weights, data, options);
        QuantizationResult result = search.Run();

        LayerSearch planted = result.Layers.Single(l => l.Layer == "bottom.0");
        Assert.Equal(LayerPrecision.Fp32, result.Plan.Layers["bottom.0"].Precision);
        CandidateError fp16 = planted.Errors.Single(e => e.Candidate.Precision == LayerPrecision.Fp16);
        Assert.False(fp16.Packed);
        Assert.Contains("65504", fp16.Failure, StringComparison.Ordinal);
        CandidateError[] int8 = [.. planted.Errors.Where(e => e.Candidate.Precision == LayerPrecision.Int8 && e.Packed)];
        Assert.NotEmpty(int8);
        Assert.All(int8, e => Assert.True(e.RelativeL2 > 0.1, $"{e.Candidate.Name}: {e.RelativeL2}"));
        Assert.NotEmpty(planted.Trials);
        Assert.All(planted.Trials, t => Assert.False(t.Accepted));
        Assert.All(planted.Trials, t => Assert.True(Math.Abs(t.NeChange) >= options.MaxNeChange));

        // The unplanted layers' int8 error is an order of magnitude below the planted one's, and at least one is quantized.
        Assert.All(result.Layers.Where(l => l.Layer != "bottom.0"), l => Assert.True(l.Errors.Where(e => e.Packed && e.Candidate.Precision == LayerPrecision.Int8).Min(e => e.RelativeL2) < 0.05, l.Layer));
        Assert.Contains(result.Plan.Layers, l => l.Value.Precision != LayerPrecision.Fp32);
        Assert.True(Math.Abs(result.Chosen.NeChangePercent(result.Fp32)) < 0.1);
    }

    [Fact]
    public void Reported_accuracy_is_the_accuracy_of_the_model_loaded_with_the_plan()
    {
        (DlrmSpec spec, string weights) = WritePlantedModel();
        ClickData data = Calibration(spec, weights);
        using var search = new PrecisionSearch(spec, weights, data, new PrecisionSearchOptions { MaxNeChange = 0.01 });
        QuantizationResult result = search.Run();

        // Independently of the search's pooled caches: load the whole model with the plan and score it.
        using DlrmModel model = DlrmModel.Load(result.Plan.Apply(spec), weights);
        double[] p = AccuracyEvaluation.Predict(model, data, data.Calibration);
        Assert.Equal(ClickMetrics.NormalizedEntropy(p, data.Labels), result.Chosen.NormalizedEntropy, 12);
        Assert.Equal(ClickMetrics.Auc(p, data.Labels), result.Chosen.Auc, 12);
        using DlrmModel fp32 = DlrmModel.Load(spec, weights);
        Assert.Equal(ClickMetrics.NormalizedEntropy(AccuracyEvaluation.Predict(fp32, data, data.Calibration), data.Labels), result.Fp32.NormalizedEntropy, 12);
    }

    [Fact]
    public void Layer_moves_go_in_order_of_measured_NE_change_per_byte_and_the_cheapest_one_takes_a_tight_budget()
    {
        (DlrmSpec spec, string weights) = WritePlantedModel();
        ClickData data = Calibration(spec, weights);
        // A budget nothing fits in: every move is measured alone and none is kept, so the moves are the plain measurements.
        var measure = new PrecisionSearchOptions { MaxLayerError = double.MaxValue, Rows = false, MaxNeChange = 1e-15 };
        LayerMove[] moves;
        using (var search = new PrecisionSearch(spec, weights, data, measure)) moves = search.Run().Moves;
        string table = string.Join("; ", moves.Select(v => $"{v.Layer} {v.Candidate.Name} alone {v.AloneNeChange:E3} {v.BytesSaved} B"));
        Assert.True(moves.Length >= 4, table);

        // The alone figure is the NE of the model loaded with just that layer reduced, scored independently of the search.
        LayerMove cheapest = moves.MinBy(v => Math.Abs(v.AloneNeChange) / v.BytesSaved)!;
        Assert.Equal(Ne(spec, weights, data, QuantizationPlan.Fp32Dense(spec).WithLayer(cheapest.Layer, cheapest.Candidate)) / Ne(spec, weights, data, QuantizationPlan.Fp32Dense(spec)) - 1, cheapest.AloneNeChange, 9);

        // Tried in ascending NE change per byte, whatever the layers' own errors say.
        double[] costs = [.. moves.Select(v => Math.Abs(v.AloneNeChange) / v.BytesSaved)];
        Assert.True(costs.Zip(costs.Skip(1)).All(p => p.First <= p.Second), table);

        // A budget just above the cheapest move's own change: that move is tried first on the model and kept.
        double budget = Math.Abs(cheapest.AloneNeChange) * 1.01;
        using var tight = new PrecisionSearch(spec, weights, data, measure with { MaxNeChange = budget });
        QuantizationResult result = tight.Run();
        LayerMove first = result.Moves.First(v => v.Trial is not null);
        Assert.Equal((cheapest.Layer, cheapest.Candidate), (first.Layer, first.Candidate));
        Assert.Equal("accepted", first.Outcome);
        Assert.True(Math.Abs(result.Chosen.NeChangePercent(result.Fp32)) / 100 < budget);

        // The order matters here: the layer with the least int8 error (the old order) is not the cheapest in NE per byte.
        string leastError = result.Layers.MinBy(l => l.Errors.Where(e => e.Packed && e.Candidate.Precision == LayerPrecision.Int8).Min(e => e.RelativeL2))!.Layer;
        Assert.True(leastError != cheapest.Layer, $"least int8 error: {leastError}; {table}");
    }

    private static double Ne(DlrmSpec spec, string weights, ClickData data, QuantizationPlan plan)
    {
        using DlrmModel model = DlrmModel.Load(plan.Apply(spec), weights);
        return ClickMetrics.NormalizedEntropy(AccuracyEvaluation.Predict(model, data, data.Calibration), data.Labels);
    }

    /// <summary>4 dense features -> bottom [16, 4] -> dot with 2 tables of dim 4 -> top [8, 1]; bottom.0's column 0 is ±1e5.</summary>
    private static (DlrmSpec Spec, string Weights) WritePlantedModel()
    {
        string dir = Path.Combine(Path.GetTempPath(), "recsys-precision-search", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string json = """
            {"kind": "dlrm", "dense_features": 4, "bottom_mlp": [16, 4], "top_mlp": [8, 1], "interaction": "dot",
             "tables": [{"name": "A", "rows": 40, "dim": 4}, {"name": "B", "rows": 60, "dim": 4}]}
            """;
        File.WriteAllText(Path.Combine(dir, "model.json"), json);
        DlrmSpec spec = ModelSpec.Load(Path.Combine(dir, "model.json")).RequireDlrm();
        (string, long[])[] shapes =
        [
            (DlrmSpec.EmbeddingWeightName(0), [40, 4]), (DlrmSpec.EmbeddingWeightName(1), [60, 4]),
            (DlrmSpec.BottomWeightName(0), [16, 4]), (DlrmSpec.BottomBiasName(0), [16]),
            (DlrmSpec.BottomWeightName(1), [4, 16]), (DlrmSpec.BottomBiasName(1), [4]),
            (DlrmSpec.TopWeightName(0), [8, spec.InteractionOutput]), (DlrmSpec.TopBiasName(0), [8]),
            (DlrmSpec.TopWeightName(1), [1, 8]), (DlrmSpec.TopBiasName(1), [1]),
        ];
        var rng = new Random(11);
        string path = Path.Combine(dir, spec.WeightsFile);
        using (var writer = new SafeTensorsWriter(path, shapes))
        {
            foreach ((string name, long[] shape) in shapes)
            {
                var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
                for (int i = 0; i < values.Length; i++) values[i] = (float)((rng.NextDouble() * 2) - 1) * (name.StartsWith("emb_l.", StringComparison.Ordinal) ? 1f : 0.7f);
                if (name == DlrmSpec.BottomWeightName(0))
                {
                    for (int o = 0; o < 16; o++) values[o * DenseFeatures] = (o % 2 == 0 ? 1e5f : -1e5f) * (0.5f + (0.05f * o));
                }

                writer.Write(values);
            }
        }

        return (spec, path);
    }

    /// <summary>Feature 0 is 1e-5 x U(0, 2), the others U(0, 2); labels drawn from the fp32 model's sharpened scores (as PlantedClicks does).</summary>
    private static ClickData Calibration(DlrmSpec spec, string weights)
    {
        var rng = new Random(5);
        var dense = new float[Samples * DenseFeatures];
        for (int i = 0; i < dense.Length; i++) dense[i] = (float)(rng.NextDouble() * 2) * (i % DenseFeatures == 0 ? 1e-5f : 1f);
        long[][] ids = [.. spec.Tables.Select(t => Enumerable.Range(0, Samples).Select(_ => (long)rng.Next((int)t.Rows)).ToArray())];
        int[][] offsets = [.. spec.Tables.Select(_ => Enumerable.Range(0, Samples + 1).ToArray())];
        var unlabelled = new ClickData(DenseFeatures, dense, ids, offsets, new byte[Samples]);
        using DlrmModel teacher = DlrmModel.Load(spec, weights);
        double[] z = [.. AccuracyEvaluation.Predict(teacher, unlabelled, ScoreCalibration.Identity).Select(p => Math.Log(p / (1 - p)))];
        double mean = z.Average(), std = Math.Sqrt(z.Sum(v => (v - mean) * (v - mean)) / z.Length);
        var calibration = new ScoreCalibration(mean, 2 / std, -1.2);
        byte[] labels = [.. z.Select(v => rng.NextDouble() < 1 / (1 + Math.Exp(-((2 / std * (v - mean)) - 1.2))) ? (byte)1 : (byte)0)];
        return new ClickData(DenseFeatures, dense, ids, offsets, labels, calibration);
    }
}
