using System.Text.Json.Nodes;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Tests;

/// <summary>A quantization plan written into model.json parses back to the same settings, and the int8 settings reach the layers.</summary>
public class QuantizationPlanTests
{
    private static readonly DlrmFixture Dot = DlrmFixture.Open("dot");

    private static QuantizationPlan MixedPlan() =>
        QuantizationPlan.Fp32Dense(Dot.Spec)
            .WithLayer("bottom.0", LayerCandidate.Int8With(WeightRangeMethod.L2))
            .WithLayer("bottom.1", LayerCandidate.Int8With(WeightRangeMethod.MinMax, outlierDensity: 0.25))
            .WithLayer("top.0", LayerCandidate.Fp16)
            .WithTable(1, RowFormat.Int4);

    [Fact]
    public void Plan_written_into_model_json_parses_back_to_the_same_settings()
    {
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Dot.Directory, "model.json")))!;
        QuantizationPlan plan = MixedPlan();
        plan.WriteInto(json);
        DlrmSpec parsed = ModelSpec.Parse(json.ToJsonString(), "model.json").RequireDlrm();

        foreach ((string layer, LayerCandidate c) in plan.Layers)
        {
            Assert.Equal(c.Precision, parsed.Precision.For(layer));
            if (c.Precision == LayerPrecision.Int8)
            {
                Int8Options o = parsed.Precision.Int8OptionsFor(layer, inputNonNegative: false);
                Assert.Equal(c.Int8.WeightRange, o.WeightRange);
                Assert.Equal(c.Int8.OutlierDensity, o.OutlierDensity);
            }
        }

        Assert.Equal([RowFormat.Fp32, RowFormat.Int4, RowFormat.Fp32], parsed.Tables.Select(t => t.Storage));
        // Fields the plan does not own survive the rewrite.
        Assert.Equal(Dot.Spec.TopMlp, parsed.TopMlp);
        Assert.Equal(Dot.Spec.Tables.Select(t => t.Rows), parsed.Tables.Select(t => t.Rows));
    }

    [Fact]
    public void Applied_plan_loads_each_layer_at_its_setting()
    {
        DlrmSpec spec = MixedPlan().Apply(Dot.Spec);
        using DlrmModel model = DlrmModel.Load(spec, Path.Combine(Dot.Directory, spec.WeightsFile));
        Assert.Equal(LayerPrecision.Int8, model.Dense.BottomLayers[0].Precision);
        Assert.Equal(LayerPrecision.Fp16, model.Dense.TopLayers[0].Precision);
        Assert.Equal(LayerPrecision.Fp32, model.Dense.TopLayers[1].Precision);
        Assert.Equal(RowFormat.Int4, model.Tables[1].Format);

        // The outlier density reaches the packer: the largest quarter of each 8-weight channel of bottom.1 are exact outliers.
        var withOutliers = (PackedLinearInt8)model.Dense.BottomLayers[1];
        if (withOutliers.Kernel == Int8Kernel.Madd16) Assert.True(withOutliers.OutlierCount >= 4, $"{withOutliers.OutlierCount} outliers");
        var plain = PackedLinearInt8.Pack(ReadWeight(spec, "bot_l.2.weight", 4, 8), new float[4], 4, 8, Gemm.Activation.Relu, new Int8Options { InputNonNegative = true, OutlierDensity = 0.25 });
        Assert.Equal(plain.OutlierCount, withOutliers.OutlierCount);
        Assert.Equal(plain.WeightScales.ToArray(), withOutliers.WeightScales.ToArray());
    }

    [Theory]
    [InlineData("{\"int8\": {\"top.0\": {\"weight_range\": \"kl\"}}}", "precision.int8.top.0.weight_range", "'kl' is not one of minmax, l2")]
    [InlineData("{\"int8\": {\"top.0\": {\"outlier_density\": 1.5}}}", "precision.int8.top.0.outlier_density", "is 1.5")]
    [InlineData("{\"int8\": {\"top.9\": {}}}", "precision.int8.top.9", "no such layer")]
    [InlineData("{\"int8\": {\"top.0\": \"l2\"}}", "precision.int8.top.0", "must be an object")]
    public void Bad_int8_settings_name_the_field(string precision, string field, string problem)
    {
        string json = File.ReadAllText(Path.Combine(Dot.Directory, "model.json")).TrimEnd().TrimEnd('}') + ", \"precision\": " + precision + "}";
        ModelFileException e = Assert.Throws<ModelFileException>(() => ModelSpec.Parse(json, "m/model.json"));
        Assert.Equal(field, e.Field);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    private static float[] ReadWeight(DlrmSpec spec, string name, params long[] shape)
    {
        using SafeTensorsFile f = SafeTensorsFile.Open(Path.Combine(Dot.Directory, spec.WeightsFile));
        return f.ReadFloats(name, shape);
    }
}
