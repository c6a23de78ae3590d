using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Vision;

namespace Recsys.OnnxModels.Tests;

/// <summary>model.json of the vision kinds: what parses, and errors naming file and field.</summary>
public sealed class VisionSpecTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "vision-spec-" + Guid.NewGuid().ToString("N")[..8]);

    public VisionSpecTests()
    {
        Directory.CreateDirectory(_dir);
        File.Copy(Path.Combine(VisionFixtures.Root, "resnext", "1", "model.onnx"), Path.Combine(_dir, "model.onnx"));
        File.WriteAllLines(Path.Combine(_dir, "labels.txt"), Enumerable.Range(0, 10).Select(i => $"l{i}"));
    }

    private string Write(string json)
    {
        string file = Path.Combine(_dir, "model.json");
        File.WriteAllText(file, json);
        return file;
    }

    [Fact]
    public void Fixture_spec_parses_every_field()
    {
        VisionSpec spec = VisionSpec.Parse(ModelSpec.Load(VisionFixtures.ModelJson("resnext")));
        Assert.Equal(VisionKind.Classification, spec.Kind);
        Assert.EndsWith("model.onnx", spec.OnnxPath, StringComparison.Ordinal);
        Assert.Equal((64, 64), (spec.Preprocessing.Height, spec.Preprocessing.Width));
        Assert.Equal([0.229f, 0.224f, 0.225f], spec.Preprocessing.Std);
        Assert.Equal(8, spec.MaxBatch);
        Assert.Equal(TimeSpan.FromMilliseconds(2), spec.MaxDelay);
        VisionSpec frames = VisionSpec.Parse(ModelSpec.Load(VisionFixtures.ModelJson("video-frames")));
        Assert.Equal(new FrameSampling("resnext", 4), frames.Frames);
        Assert.Null(frames.OnnxPath);
    }

    [Fact]
    public void Minimal_spec_needs_only_kind_and_onnx_and_reads_the_rest_from_the_graph()
    {
        using VisionModel model = VisionModel.Load(ModelSpec.Load(Write("""{"kind": "classification", "onnx": "model.onnx"}""")));
        Assert.Equal("image", model.PrimaryInput.Name);
        Assert.Equal("probs", model.ScoresOutput);
        Assert.Equal((64, 64), (model.Images!.Height, model.Images.Width));
        Assert.Null(model.Labels);
    }

    [Theory]
    [InlineData("""{"kind": "classification"}""", "onnx")]
    [InlineData("""{"kind": "segmentation", "onnx": "model.onnx"}""", "kind")]
    [InlineData("""{"kind": "classification", "onnx": "missing.onnx"}""", "onnx")]
    [InlineData("""{"kind": "classification", "onnx": "../model.onnx"}""", "onnx")]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "labels": "none.txt"}""", "labels")]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "preprocessing": {"std": [1, 0, 1]}}""", "preprocessing.std[1]")]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "preprocessing": {"mean": [0.5, 0.5]}}""", "preprocessing.mean")]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "preprocessing": {"layout": "CHW"}}""", "preprocessing.layout")]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "preprocessing": {"resize": [64]}}""", "preprocessing.resize")]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "preprocessing": {"size": [64, 64]}}""", "preprocessing.size")]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "batching": {"max_batch": 0}}""", "batching.max_batch")]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "batching": {"max_delay_ms": -1}}""", "batching.max_delay_ms")]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "frames": {"model": "x", "count": 2}}""", "frames")]
    [InlineData("""{"kind": "video", "frames": {"model": "x"}}""", "frames.count")]
    [InlineData("""{"kind": "video", "frames": {"model": "x", "count": 2}, "onnx": "model.onnx"}""", "onnx")]
    public void Bad_fields_are_named(string json, string field)
    {
        string file = Write(json);
        ModelFileException e = Assert.Throws<ModelFileException>(() => VisionSpec.Parse(ModelSpec.Load(file)));
        Assert.Equal(field, e.Field);
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"kind": "classification", "onnx": "model.onnx", "preprocessing": {"resize": [32, 32]}}""", "preprocessing.resize")]
    [InlineData("""{"kind": "detection", "onnx": "model.onnx"}""", "outputs")]
    [InlineData("""{"kind": "video", "frames": {"model": "nosuchmodel", "count": 2}}""", "frames.model")]
    [InlineData("""{"kind": "classification", "onnx": "labels.txt"}""", "onnx")]
    public void Specs_that_disagree_with_the_graph_fail_at_load(string json, string field)
    {
        string file = Write(json);
        ModelFileException e = Assert.Throws<ModelFileException>(() => VisionModel.Load(ModelSpec.Load(file)));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void Label_count_must_match_the_graphs_classes()
    {
        File.WriteAllLines(Path.Combine(_dir, "labels.txt"), ["only", "three", "labels"]);
        ModelFileException e = Assert.Throws<ModelFileException>(() => VisionModel.Load(ModelSpec.Load(Write("""{"kind": "classification", "onnx": "model.onnx", "labels": "labels.txt"}"""))));
        Assert.Equal("labels", e.Field);
        Assert.Contains("10 classes", e.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
