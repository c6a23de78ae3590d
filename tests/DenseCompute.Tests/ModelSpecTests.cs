using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

public class ModelSpecTests
{
    private const string File = "models/m/1/model.json";

    private const string Valid = """
        {"kind": "dlrm", "dense_features": 13, "bottom_mlp": [64, 16], "top_mlp": [32, 1],
         "tables": [{"name": "C1", "rows": 100, "dim": 16}, {"name": "C2", "rows": 50, "dim": 16, "pooling": "mean", "storage": "int4", "shards": 2, "lookups": 20}]}
        """;

    [Fact]
    public void Defaults_are_filled_in()
    {
        DlrmSpec spec = ModelSpec.Parse(Valid, File).RequireDlrm();
        Assert.Equal(InteractionKind.Dot, spec.Interaction);
        Assert.False(spec.InteractionItself);
        Assert.Equal("weights.safetensors", spec.WeightsFile);
        Assert.Equal(new TableSpec("C1", 100, 16, Pooling.Sum, RowFormat.Fp32, 1, 1), spec.Tables[0]);
        Assert.Equal(new TableSpec("C2", 50, 16, Pooling.Mean, RowFormat.Int4, 2, 20), spec.Tables[1]);
        Assert.Equal(16, spec.BottomOutput);
        Assert.Equal(16 + 3, spec.InteractionOutput);
        Assert.Equal(1, spec.Events);
    }

    [Theory]
    [InlineData("{\"kind\": \"dlrm\", ", "json")]
    [InlineData("[1, 2]", "json")]
    [InlineData("{\"dense_features\": 13}", "kind")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"interaction\": \"bilinear\", \"tables\": []}", "interaction")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": -1, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": []}", "dense_features")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16, -4], \"top_mlp\": [1], \"tables\": []}", "bottom_mlp[1]")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [], \"tables\": []}", "top_mlp")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1.5], \"tables\": []}", "top_mlp[0]")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1]}", "tables")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [{\"name\": \"C1\", \"rows\": 10, \"dim\": -16}]}", "tables[0].dim")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [{\"name\": \"C1\", \"rows\": 0, \"dim\": 16}]}", "tables[0].rows")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [{\"rows\": 10, \"dim\": 16}]}", "tables[0].name")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [{\"name\": \"C1\", \"rows\": 10, \"dim\": 16}, {\"name\": \"C2\", \"rows\": 10, \"dim\": 8}]}", "tables[1].dim")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [{\"name\": \"C1\", \"rows\": 10, \"dim\": 16}, {\"name\": \"C1\", \"rows\": 10, \"dim\": 16}]}", "tables[1].name")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [{\"name\": \"C1\", \"rows\": 10, \"dim\": 16, \"storage\": \"int2\"}]}", "tables[0].storage")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [{\"name\": \"C1\", \"rows\": 10, \"dim\": 16, \"pooling\": \"max\"}]}", "tables[0].pooling")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [{\"name\": \"C1\", \"rows\": 10, \"dim\": 16, \"shards\": 11}]}", "tables[0].shards")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [], \"weights\": 5}", "weights")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 13, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": [], \"interaction_itself\": \"yes\"}", "interaction_itself")]
    [InlineData("{\"kind\": \"dlrm\", \"dense_features\": 0, \"bottom_mlp\": [16], \"top_mlp\": [1], \"tables\": []}", "bottom_mlp")]
    public void Bad_model_json_names_the_file_and_field(string json, string field)
    {
        var e = Assert.Throws<ModelFileException>(() => ModelSpec.Parse(json, File));
        Assert.Equal(File, e.File);
        Assert.Equal(field, e.Field);
        Assert.StartsWith($"{File}: {field}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cat_allows_tables_of_different_dims()
    {
        DlrmSpec spec = ModelSpec.Parse("""
            {"kind": "dlrm", "dense_features": 3, "bottom_mlp": [4], "top_mlp": [1], "interaction": "cat",
             "tables": [{"name": "a", "rows": 5, "dim": 3}, {"name": "b", "rows": 5, "dim": 7}]}
            """, File).RequireDlrm();
        Assert.Equal(4 + 3 + 7, spec.InteractionOutput);
    }

    [Fact]
    public void A_non_dlrm_kind_is_refused_where_a_dlrm_is_needed()
    {
        ModelSpec spec = ModelSpec.Parse("{\"kind\": \"classification\", \"onnx\": \"m.onnx\"}", File);
        var e = Assert.Throws<ModelFileException>(spec.RequireDlrm);
        Assert.Equal("kind", e.Field);
    }

    [Fact]
    public void Missing_model_json_names_the_file()
    {
        string dir = Temp.Directory();
        var e = Assert.Throws<ModelFileException>(() => DlrmModel.Load(dir));
        Assert.Equal(Path.Combine(dir, "model.json"), e.File);
    }

    [Fact]
    public void Missing_weights_file_names_the_weights_file()
    {
        string dir = Temp.Directory();
        System.IO.File.WriteAllText(Path.Combine(dir, "model.json"), """
            {"kind": "dlrm", "dense_features": 2, "bottom_mlp": [4], "top_mlp": [1],
             "tables": [{"name": "C1", "rows": 5, "dim": 4}], "weights": "missing.safetensors"}
            """);
        var e = Assert.Throws<ModelFileException>(() => DlrmModel.Load(dir));
        Assert.Equal(Path.Combine(dir, "missing.safetensors"), e.File);
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
    }
}
