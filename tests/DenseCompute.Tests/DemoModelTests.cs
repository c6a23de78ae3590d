using System.Text;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

public class DemoModelTests
{
    [Fact]
    public void Same_seed_writes_the_same_bytes_and_another_seed_does_not()
    {
        DemoPreset preset = DemoPreset.Find("kaggle-small");
        string a = Temp.Directory(), b = Temp.Directory(), c = Temp.Directory();
        DemoModel.Write(a, preset, scale: 0.001, seed: 5);
        DemoModel.Write(b, preset, scale: 0.001, seed: 5);
        DemoModel.Write(c, preset, scale: 0.001, seed: 6);
        foreach (string file in new[] { "model.json", "weights.safetensors", "sample-request.json" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(a, file)), File.ReadAllBytes(Path.Combine(b, file)));
        }
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(a, "weights.safetensors")), File.ReadAllBytes(Path.Combine(c, "weights.safetensors")));
    }

    [Theory]
    [InlineData("kaggle-small", "fp32")]
    [InlineData("kaggle-small", "int4")]
    [InlineData("rmc1", "int8")]
    [InlineData("rmc2", "fp16")]
    public void Written_model_loads_and_scores_its_sample_request_in_0_1(string presetName, string storage)
    {
        DemoPreset preset = DemoPreset.Find(presetName);
        string dir = Temp.Directory();
        DemoModel.Write(dir, preset, scale: 1e-5, storage: storage);
        using DlrmModel model = DlrmModel.Load(dir);
        Assert.Equal(preset.Tables, model.Spec.Tables.Length);
        Assert.All(model.Spec.Tables, t => Assert.Equal(storage, Embeddings.RowLayout.Name(t.Storage)));
        RankBatch batch = new RankRequestJson(model.Spec).Parse(File.ReadAllBytes(Path.Combine(dir, "sample-request.json")));
        float[] scores = model.Score(batch);
        Assert.Equal(4, scores.Length);
        Assert.All(scores, s => Assert.True(s > 0 && s < 1 && float.IsFinite(s), $"score {s}"));
        // Different samples must not collapse to one value, or the model would ignore its inputs.
        Assert.True(scores.Distinct().Count() > 1, string.Join(", ", scores));
    }

    [Fact]
    public void Weights_follow_the_reference_init_scale()
    {
        DemoPreset preset = DemoPreset.Find("kaggle-small");
        string dir = Temp.Directory();
        DemoModel.Write(dir, preset, scale: 0.001);
        using SafeTensorsFile file = SafeTensorsFile.Open(Path.Combine(dir, "weights.safetensors"));
        // Embeddings U(-1/sqrt(n), 1/sqrt(n)) with n the unscaled 20 000 rows; first bottom layer N(0, sqrt(2 / (512 + 13))).
        float[] emb = file.ReadFloats("emb_l.0.weight", 20, 16);
        Assert.All(emb, v => Assert.InRange(Math.Abs(v), 0, 1 / Math.Sqrt(20_000)));
        Assert.True(emb.Max(Math.Abs) > 0.5 / Math.Sqrt(20_000));
        float[] w = file.ReadFloats("bot_l.0.weight", 512, 13);
        double std = Math.Sqrt(w.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.9 * Math.Sqrt(2.0 / 525), 1.1 * Math.Sqrt(2.0 / 525));
        Assert.Equal(351 + 16, file.Get("top_l.0.weight").Shape[1]);
    }

    [Fact]
    public void Sample_request_has_each_tables_lookups_per_bag()
    {
        DemoPreset preset = DemoPreset.Find("rmc1");
        string dir = Temp.Directory();
        DemoModel.Write(dir, preset, scale: 1e-5);
        DlrmSpec spec = ModelSpec.Load(Path.Combine(dir, "model.json")).RequireDlrm();
        RankBatch batch = new RankRequestJson(spec).Parse(Encoding.UTF8.GetBytes(File.ReadAllText(Path.Combine(dir, "sample-request.json"))));
        Assert.All(batch.Sparse, s => Assert.Equal(4 * preset.Lookups, s.Ids.Length));
    }
}
