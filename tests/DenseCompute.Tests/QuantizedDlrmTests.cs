using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Gemm;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Tests;

/// <summary>model.json "precision" settings: parsing, and a DLRM loaded at fp16 / int8 against fp32.</summary>
public class QuantizedDlrmTests
{
    private const string File = "models/m/1/model.json";

    private static string Json(string precision) =>
        "{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [64, 16], \"top_mlp\": [32, 8, 1], \"tables\": [{\"name\": \"C1\", \"rows\": 100, \"dim\": 16}]" +
        (precision.Length > 0 ? ", \"precision\": " + precision : "") + "}";

    [Fact]
    public void Without_a_precision_field_every_layer_is_fp32()
    {
        DlrmSpec spec = ModelSpec.Parse(Json(""), File).RequireDlrm();
        Assert.Equal(LayerPrecision.Fp32, spec.Precision.Dense);
        Assert.Empty(spec.Precision.Layers);
        Assert.Equal(LayerPrecision.Fp32, spec.Precision.For("top.2"));
    }

    [Fact]
    public void Dense_default_and_layer_overrides_are_parsed()
    {
        DlrmSpec spec = ModelSpec.Parse(Json("{\"dense\": \"int8\", \"layers\": {\"bottom.0\": \"fp32\", \"top.2\": \"fp16\"}}"), File).RequireDlrm();
        Assert.Equal(LayerPrecision.Int8, spec.Precision.Dense);
        Assert.Equal(LayerPrecision.Fp32, spec.Precision.For("bottom.0"));
        Assert.Equal(LayerPrecision.Int8, spec.Precision.For("bottom.1"));
        Assert.Equal(LayerPrecision.Int8, spec.Precision.For("top.0"));
        Assert.Equal(LayerPrecision.Fp16, spec.Precision.For("top.2"));
    }

    [Theory]
    [InlineData("\"int8\"", "precision")]
    [InlineData("{\"dense\": \"int4\"}", "precision.dense")]
    [InlineData("{\"dense\": 8}", "precision.dense")]
    [InlineData("{\"layers\": [\"top.0\"]}", "precision.layers")]
    [InlineData("{\"layers\": {\"top.3\": \"int8\"}}", "precision.layers.top.3")]
    [InlineData("{\"layers\": {\"bottom.2\": \"int8\"}}", "precision.layers.bottom.2")]
    [InlineData("{\"layers\": {\"middle.0\": \"int8\"}}", "precision.layers.middle.0")]
    [InlineData("{\"layers\": {\"top.-1\": \"int8\"}}", "precision.layers.top.-1")]
    [InlineData("{\"layers\": {\"top\": \"int8\"}}", "precision.layers.top")]
    [InlineData("{\"layers\": {\"top.0\": \"bf16\"}}", "precision.layers.top.0")]
    [InlineData("{\"layers\": {\"top.0\": 16}}", "precision.layers.top.0")]
    public void Bad_precision_settings_name_the_field(string precision, string field)
    {
        var e = Assert.Throws<ModelFileException>(() => ModelSpec.Parse(Json(precision), File));
        Assert.Equal(File, e.File);
        Assert.Equal(field, e.Field);
    }

    public static TheoryData<string> Configs() => [.. DlrmFixture.Configs];

    [Theory]
    [MemberData(nameof(Configs))]
    public void Every_layer_is_built_at_its_precision_and_the_last_keeps_its_sigmoid(string config)
    {
        DlrmFixture f = DlrmFixture.Open(config);
        var precision = new DensePrecision(LayerPrecision.Int8, new Dictionary<string, LayerPrecision> { ["top.0"] = LayerPrecision.Fp16 });
        using DlrmModel model = DlrmModel.Load(f.Spec with { Precision = precision }, Path.Combine(f.Directory, "weights.safetensors"));
        for (int i = 0; i < model.Dense.BottomLayers.Count; i++) Assert.Equal(LayerPrecision.Int8, model.Dense.BottomLayers[i].Precision);
        Assert.Equal(LayerPrecision.Fp16, model.Dense.TopLayers[0].Precision);
        for (int i = 1; i < model.Dense.TopLayers.Count; i++) Assert.Equal(LayerPrecision.Int8, model.Dense.TopLayers[i].Precision);
        Assert.Equal(Activation.Sigmoid, model.Dense.TopLayers[^1].Activation);
        Assert.All(model.Score(f.Batch()), s => Assert.InRange(s, 0f, 1f));
    }

    /// <summary>
    /// fp16 weights change each weight by at most 2^-11 relative, so scores move by about 1e-4 here;
    /// allowed 1e-3 absolute. int8 (dynamic u8 activations, per-channel s8 weights) adds roughly 1%
    /// relative error per layer to the logit; through the sigmoid (slope &lt;= 1/4) that is allowed 0.02 absolute.
    /// </summary>
    [Theory]
    [InlineData("fp16", 1e-3)]
    [InlineData("int8", 0.02)]
    public void Dlrm_scores_at_reduced_precision_stay_close_to_fp32(string precision, double tolerance)
    {
        foreach (string config in DlrmFixture.Configs)
        {
            DlrmFixture f = DlrmFixture.Open(config);
            string weights = Path.Combine(f.Directory, "weights.safetensors");
            Assert.True(LayerPrecisions.TryParse(precision, out LayerPrecision p));
            using DlrmModel fp32 = DlrmModel.Load(f.Spec, weights);
            using DlrmModel reduced = DlrmModel.Load(f.Spec with { Precision = new DensePrecision(p, new Dictionary<string, LayerPrecision>()) }, weights);
            RankBatch batch = f.Batch();
            float[] expected = fp32.Score(batch), actual = reduced.Score(batch);
            Assert.Equal(expected.Length, actual.Length);
            double worst = 0;
            for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
            Assert.True(worst <= tolerance, $"{config} {precision}: max |score - fp32 score| = {worst:E2} > {tolerance}");
            Assert.True(worst > 0, $"{config} {precision}: scores identical to fp32, the precision setting was not applied");
        }
    }
}
