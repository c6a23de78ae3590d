using Microsoft.ML.OnnxRuntime;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Runtime;

namespace Recsys.OnnxModels.Vision;

/// <summary>
/// Frame-based video classification (Park et al., 2018): from a clip [N, 3, T, H, W] take Count
/// frames at t = floor(i * T / Count), classify all N * Count frames in one run of the image model,
/// and average each clip's class scores. Declares one input "clip" and the image model's score output.
/// </summary>
internal sealed class FrameVideoModel : VisionModel
{
    private readonly OnnxGraph _image;
    private readonly TensorSignature _frame;
    private readonly TensorSignature _scores;
    private readonly int _count;
    private readonly string[] _frameName;
    private readonly string[] _scoresName;

    private FrameVideoModel(VisionSpec spec, OnnxGraph image, IReadOnlyList<string>? labels, int count) : base(spec, labels)
    {
        _image = image;
        _count = count;
        _frame = image.Inputs[0];
        if (image.Inputs.Count != 1 || _frame.Rank != 4 || _frame.Element != ElementKind.Float32 || _frame.Dims[0] >= 0)
        {
            throw new ModelFileException(spec.File, "frames.model", $"the image model must take one FP32 [N, C, H, W] input with an open batch; {Path.GetFileName(image.Path)} takes {string.Join(", ", image.Inputs.Select(i => $"{i.Name} {TensorSignature.Describe(i.Dims)}"))}");
        }
        _scores = image.Outputs.FirstOrDefault(o => o.Element == ElementKind.Float32 && o.Rank == 2)
            ?? throw new ModelFileException(spec.File, "frames.model", $"{Path.GetFileName(image.Path)} has no FP32 [N, classes] output");
        _frameName = [_frame.Name];
        _scoresName = [_scores.Name];
        Inputs = [new TensorSignature("clip", ElementKind.Float32, [-1, _frame.Dims[1], -1, _frame.Dims[2], _frame.Dims[3]], ["batch", null, "frames", null, null])];
        Outputs = [_scores with { SymbolicDims = ["batch", null] }];
    }

    public override IReadOnlyList<TensorSignature> Inputs { get; }
    public override IReadOnlyList<TensorSignature> Outputs { get; }
    public override string Platform => "recsys_frame_video";

    /// <summary>frames.model names a classification model in the same repository (its newest version), or an .onnx file next to this model.json.</summary>
    public static FrameVideoModel Open(VisionSpec spec, FrameSampling frames)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(spec.File))!;
        string onnx;
        string? labels = spec.LabelsPath;
        if (frames.Model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            if (Path.IsPathRooted(frames.Model) || frames.Model.Contains("..", StringComparison.Ordinal)) throw new ModelFileException(spec.File, "frames.model", $"'{frames.Model}' must be a file name inside the model's version directory");
            onnx = Path.Combine(directory, frames.Model);
            if (!File.Exists(onnx)) throw new ModelFileException(spec.File, "frames.model", $"'{frames.Model}' does not exist in {directory}");
        }
        else
        {
            // models/<this>/<version>/model.json: the repository is two levels up.
            var repository = new ModelRepository(Path.GetDirectoryName(Path.GetDirectoryName(directory))!);
            string version = ModelRepository.IsSafeName(frames.Model) ? repository.NewestVersion(frames.Model) ?? "" : "";
            if (version.Length == 0) throw new ModelFileException(spec.File, "frames.model", $"no model '{frames.Model}' in {repository.Root} (name a classification model or an .onnx file)");
            VisionSpec image = VisionSpec.Parse(repository.LoadSpec(frames.Model, version));
            if (image.Kind != VisionKind.Classification || image.OnnxPath is null) throw new ModelFileException(spec.File, "frames.model", $"'{frames.Model}' is a {image.Kind.ToString().ToLowerInvariant()} model; frames are classified by a classification model");
            onnx = image.OnnxPath;
            labels ??= image.LabelsPath;
        }
        OnnxGraph graph = GraphModel.OpenGraph(onnx, spec.File);
        try
        {
            return new FrameVideoModel(spec, graph, ReadLabels(labels), frames.Count);
        }
        catch
        {
            graph.Dispose();
            throw;
        }
    }

    public override GraphOutcome[] RunBatch(IReadOnlyList<GraphRequest> requests)
    {
        var outcomes = new GraphOutcome[requests.Count];
        for (int i = 0; i < requests.Count; i++)
        {
            try
            {
                outcomes[i] = new GraphOutcome(new Dictionary<string, HostTensor> { [_scores.Name] = Classify(requests[i].Inputs["clip"]) }, null);
            }
            catch (Exception e) when (e is OnnxRuntimeException or VisionInputException)
            {
                outcomes[i] = new GraphOutcome(null, e);
            }
        }
        return outcomes;
    }

    /// <summary>Frame indices sampled from a clip of <paramref name="frames"/> frames.</summary>
    public static int[] SampledFrames(int frames, int count) => [.. Enumerable.Range(0, count).Select(i => (int)((long)i * frames / count))];

    /// <summary>
    /// The sampled frames go into a rented array (a clip's frames are hundreds of KB: a fresh array
    /// per request would be large-object garbage) and the class scores are averaged straight out of
    /// ONNX Runtime's output; the request's [N, classes] means are all this allocates.
    /// </summary>
    private HostTensor Classify(HostTensor clip)
    {
        int n = (int)clip.Shape[0], c = (int)clip.Shape[1], t = (int)clip.Shape[2], h = (int)clip.Shape[3], w = (int)clip.Shape[4];
        int plane = h * w;
        ReadOnlySpan<float> src = clip.Floats;
        using var input = new RentedTensors();
        Span<float> frames = input.Add<float>([(long)n * _count, c, h, w]);
        for (int i = 0; i < _count; i++)
        {
            // floor(i * T / Count), as SampledFrames.
            int pick = (int)((long)i * t / _count);
            for (int b = 0; b < n; b++)
            {
                for (int ch = 0; ch < c; ch++)
                {
                    int from = (((b * c) + ch) * t + pick) * plane;
                    int to = (((b * _count) + i) * c + ch) * plane;
                    src.Slice(from, plane).CopyTo(frames.Slice(to, plane));
                }
            }
        }
        using IDisposableReadOnlyCollection<OrtValue> results = _image.RunValues(_frameName, input.Values, _scoresName);
        OrtValue scores = results.First();
        long[] shape = scores.GetTensorTypeAndShape().Shape;
        if (shape.Length != 2 || shape[0] != (long)n * _count) throw new InvalidOperationException($"the image model's '{_scores.Name}' came back {TensorSignature.Describe(shape)} for {n * _count} frames");
        int classes = (int)shape[1];
        ReadOnlySpan<float> s = scores.GetTensorDataAsSpan<float>();
        var mean = new float[n * classes];
        for (int b = 0; b < n; b++)
        {
            for (int k = 0; k < classes; k++)
            {
                float sum = 0;
                for (int i = 0; i < _count; i++) sum += s[((b * _count) + i) * classes + k];
                mean[b * classes + k] = sum / _count;
            }
        }
        return HostTensor.Of(mean, n, classes);
    }

    public override void Dispose() => _image.Dispose();
}
