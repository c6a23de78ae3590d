using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

/// <summary>model.json "replicas" per table: how many copies of each shard the cluster keeps.</summary>
public class ModelSpecReplicasTests
{
    private const string File = "models/m/1/model.json";

    private static string Model(string secondTable) => $$"""
        {"kind": "dlrm", "dense_features": 0, "bottom_mlp": [], "top_mlp": [1], "interaction": "cat",
         "tables": [{"name": "C1", "rows": 100, "dim": 4, "shards": 2}, {{secondTable}}]}
        """;

    [Fact]
    public void Replicas_default_to_one_and_are_read_per_table()
    {
        DlrmSpec spec = ModelSpec.Parse(Model("""{"name": "C2", "rows": 50, "dim": 4, "shards": 3, "replicas": 2}"""), File).RequireDlrm();
        Assert.Equal(1, spec.Tables[0].Replicas);
        Assert.Equal(2, spec.Tables[1].Replicas);
        Assert.Equal(3, spec.Tables[1].Shards);
    }

    [Theory]
    [InlineData("0", "is 0, must be >= 1")]
    [InlineData("-2", "is -2, must be >= 1")]
    [InlineData("1.5", "must be an integer")]
    [InlineData("\"2\"", "must be an integer")]
    public void Bad_replicas_name_the_file_and_field(string value, string problem)
    {
        var e = Assert.Throws<ModelFileException>(() => ModelSpec.Parse(Model($$"""{"name": "C2", "rows": 50, "dim": 4, "replicas": {{value}}}"""), File));
        Assert.Equal(File, e.File);
        Assert.Equal("tables[1].replicas", e.Field);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }
}
