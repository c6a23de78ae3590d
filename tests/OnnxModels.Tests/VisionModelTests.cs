using System.Text.Json.Nodes;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Vision;
using SkiaSharp;

namespace Recsys.OnnxModels.Tests;

/// <summary>ONNX Runtime's answers on the fixture graphs against PyTorch's, run alone and concatenated into batches.</summary>
public sealed class VisionModelTests
{
    private static VisionModel Load(string name) => VisionModel.Load(ModelSpec.Load(VisionFixtures.ModelJson(name)));

    [Theory]
    [InlineData("resnext", 1e-5)]
    [InlineData("video3d", 1e-5)]
    [InlineData("video-frames", 1e-5)]
    public void Class_scores_equal_pytorch_for_every_case(string name, double tolerance)
    {
        using VisionModel model = Load(name);
        foreach (VisionFixtures.Case c in VisionFixtures.Cases(name))
        {
            GraphOutcome outcome = model.RunBatch([new GraphRequest(c.Inputs)])[0];
            foreach ((string output, HostTensor expected) in c.Outputs) VisionFixtures.AssertClose(expected, outcome.Get()[output], tolerance, $"{name}/{c.Name}/{output}");
        }
    }

    [Theory]
    [InlineData("resnext")]
    [InlineData("video3d")]
    [InlineData("video-frames")]
    public void A_batch_of_requests_gets_each_its_own_rows(string name)
    {
        using VisionModel model = Load(name);
        IReadOnlyList<VisionFixtures.Case> cases = VisionFixtures.Cases(name);
        // Each case twice, interleaved, so a wrong split would hand rows to the wrong request.
        VisionFixtures.Case[] order = [.. cases, .. cases.Reverse()];
        GraphOutcome[] outcomes = model.RunBatch([.. order.Select(c => new GraphRequest(c.Inputs))]);
        Assert.Equal(order.Length, outcomes.Length);
        for (int i = 0; i < order.Length; i++)
        {
            foreach ((string output, HostTensor expected) in order[i].Outputs) VisionFixtures.AssertClose(expected, outcomes[i].Get()[output], 1e-5, $"{name}/{order[i].Name}#{i}/{output}");
        }
    }

    [Fact]
    public void Resnext_graph_concatenates_and_the_detector_runs_per_image()
    {
        using var resnext = new OnnxGraph(Path.Combine(VisionFixtures.Root, "resnext", "1", "model.onnx"));
        using var detector = new OnnxGraph(Path.Combine(VisionFixtures.Root, "detector", "1", "model.onnx"));
        Assert.True(resnext.Batchable);
        Assert.False(detector.Batchable);
        Assert.Equal([-1L, 3, 64, 64], resnext.Inputs[0].Dims);
        Assert.Equal([3L, 128, 128], detector.Inputs[0].Dims);
    }

    [Fact]
    public void Detections_equal_pytorch_after_the_graphs_own_nms()
    {
        using VisionModel model = Load("detector");
        IReadOnlyList<VisionFixtures.Case> cases = VisionFixtures.Cases("detector");
        GraphOutcome[] outcomes = model.RunBatch([.. cases.Select(c => new GraphRequest(c.Inputs))]);
        for (int i = 0; i < cases.Count; i++)
        {
            IReadOnlyDictionary<string, HostTensor> got = outcomes[i].Get();
            Assert.True(cases[i].Outputs["scores"].Length > 0, "the fixture image has detections");
            VisionFixtures.AssertClose(cases[i].Outputs["labels"], got["labels"], 0, $"detector/{cases[i].Name}/labels");
            VisionFixtures.AssertClose(cases[i].Outputs["scores"], got["scores"], 1e-4, $"detector/{cases[i].Name}/scores");
            VisionFixtures.AssertClose(cases[i].Outputs["boxes"], got["boxes"], 1e-3, $"detector/{cases[i].Name}/boxes");
            Detection[] detections = Detection.FromOutputs(got["boxes"], got["labels"], got["scores"], model.Labels);
            Assert.Equal(cases[i].Outputs["labels"].Longs.Select(l => model.Labels![(int)l]), detections.Select(d => d.Label));
        }
    }

    [Fact]
    public void Frame_sampling_takes_floor_of_i_times_frames_over_count()
    {
        Assert.Equal([0, 2, 4, 6], FrameVideoModel.SampledFrames(8, 4));
        Assert.Equal([0, 1, 2, 3], FrameVideoModel.SampledFrames(5, 4));
        Assert.Equal([0, 0, 1, 1], FrameVideoModel.SampledFrames(2, 4));
    }

    [Fact]
    public void Png_preprocessing_equals_the_scripts_resize_and_normalisation()
    {
        using VisionModel model = Load("resnext");
        JsonNode reference = JsonNode.Parse(File.ReadAllText(Path.Combine(VisionFixtures.Root, "resnext", "preprocess.json")))!;
        byte[] png = File.ReadAllBytes(Path.Combine(VisionFixtures.Root, "resnext", reference["image"]!.GetValue<string>()));
        HostTensor tensor = model.ImageInput(png, out int width, out int height);
        Assert.Equal((52, 40), (width, height));
        // Both sides round the resized image to 8 bits; SkiaSharp's bilinear may land one step away: 1/255 over the smallest std.
        VisionFixtures.AssertClose(VisionFixtures.Tensor(reference["tensor"]!), tensor, 1.0 / 255 / 0.224 + 1e-5, "preprocessed");
        HostTensor probs = model.RunBatch([new GraphRequest(new Dictionary<string, HostTensor> { ["image"] = tensor })])[0].Get()["probs"];
        VisionFixtures.AssertClose(VisionFixtures.Tensor(reference["probs"]!), probs, 2e-3, "probs of the preprocessed PNG");
    }

    [Fact]
    public void Non_images_and_images_over_the_pixel_limit_are_refused_before_decoding()
    {
        var pre = new ImagePreprocessor(Preprocessing.Default with { MaxPixels = 399 }, 8, 8);
        VisionInputException notImage = Assert.Throws<VisionInputException>(() => pre.ToTensor("{\"tensor\": [1, 2]}"u8, out _, out _));
        Assert.Equal(400, notImage.Status);
        Assert.Contains("not an image", notImage.Message, StringComparison.Ordinal);
        VisionInputException tooBig = Assert.Throws<VisionInputException>(() => pre.ToTensor(Png(20, 20), out _, out _));
        Assert.Equal(413, tooBig.Status);
        Assert.Contains("400 pixels", tooBig.Message, StringComparison.Ordinal);
        HostTensor ok = pre.ToTensor(Png(19, 21), out int w, out int h);
        Assert.Equal((19, 21), (w, h));
        Assert.Equal([1L, 3, 8, 8], ok.Shape);
    }

    [Fact]
    public void Solid_colour_png_normalises_to_the_expected_constant_per_channel()
    {
        var pre = new ImagePreprocessor(new Preprocessing(4, 4, [0.5f, 0.25f, 0f], [0.5f, 0.25f, 2f], ImageLayout.Nhwc, 1 << 20), 4, 4);
        HostTensor t = pre.ToTensor(Png(9, 7, new SKColor(255, 0, 51)), out _, out _);
        Assert.Equal([1L, 4, 4, 3], t.Shape);
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal((1f - 0.5f) / 0.5f, t.Floats[i * 3], 5);
            Assert.Equal((0f - 0.25f) / 0.25f, t.Floats[i * 3 + 1], 5);
            Assert.Equal((51 / 255f) / 2f, t.Floats[i * 3 + 2], 5);
        }
    }

    [Fact]
    public void Jpeg_decodes_to_its_colour_within_compression_error()
    {
        using var bitmap = new SKBitmap(24, 16, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        bitmap.Erase(new SKColor(200, 100, 50));
        using SKData jpeg = bitmap.Encode(SKEncodedImageFormat.Jpeg, 100);
        var pre = new ImagePreprocessor(Preprocessing.Default with { MaxPixels = 1 << 20 }, 8, 12);
        HostTensor t = pre.ToTensor(jpeg.ToArray(), out int w, out int h);
        Assert.Equal((24, 16), (w, h));
        Assert.Equal([1L, 3, 8, 12], t.Shape);
        float[] colour = [200 / 255f, 100 / 255f, 50 / 255f];
        for (int c = 0; c < 3; c++)
        {
            for (int i = 0; i < 96; i++) Assert.True(Math.Abs(t.Floats[c * 96 + i] - colour[c]) <= 3 / 255f, $"channel {c} pixel {i}: {t.Floats[c * 96 + i] * 255} vs {colour[c] * 255}");
        }
    }

    [Fact]
    public void Top_k_orders_classes_by_score_with_labels()
    {
        HostTensor scores = HostTensor.Of([0.1f, 0.5f, 0.2f, 0.2f, 0.9f, 0f], 2, 3);
        ClassScore[][] top = TopK.Rows(scores, 2, ["a", "b", "c"]);
        Assert.Equal([(1, "b", 0.5f), (2, "c", 0.2f)], top[0].Select(c => (c.Index, c.Label, c.Score)));
        Assert.Equal([(1, "b", 0.9f), (0, "a", 0.2f)], top[1].Select(c => (c.Index, c.Label, c.Score)));
    }

    internal static byte[] Png(int width, int height, SKColor? colour = null)
    {
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        bitmap.Erase(colour ?? new SKColor(10, 200, 30));
        using SKData data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
