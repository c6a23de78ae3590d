using Recsys.DenseCompute.Models;

namespace Recsys.OnnxModels.Vision;

/// <summary>
/// A loaded vision model: its declared inputs and outputs (read from the ONNX graph), labels,
/// preprocessing and batch limits, and a batch runner. <see cref="RunBatch"/> is the compute: the
/// server calls it only inside a scheduler unit.
/// </summary>
public abstract class VisionModel : IDisposable
{
    protected VisionModel(VisionSpec spec, IReadOnlyList<string>? labels)
    {
        Spec = spec;
        Labels = labels;
    }

    public VisionSpec Spec { get; }
    public VisionKind Kind => Spec.Kind;
    public IReadOnlyList<string>? Labels { get; }
    public abstract IReadOnlyList<TensorSignature> Inputs { get; }
    public abstract IReadOnlyList<TensorSignature> Outputs { get; }

    /// <summary>"onnx" for a graph, "frames" for frame-based video.</summary>
    public abstract string Platform { get; }

    /// <summary>The input convenience endpoints fill (image or clip): the graph's first input.</summary>
    public TensorSignature PrimaryInput => Inputs[0];

    /// <summary>Classification and video: the [N, C] class scores. Detection: the per-box scores.</summary>
    public string ScoresOutput { get; private set; } = "";

    /// <summary>Detection only: [K, 4] boxes and [K] class ids.</summary>
    public string BoxesOutput { get; private set; } = "";

    public string LabelsOutput { get; private set; } = "";

    /// <summary>Encoded image to input tensor, for classification and detection models with a known input size; else null.</summary>
    public ImagePreprocessor? Images { get; private set; }

    public abstract GraphOutcome[] RunBatch(IReadOnlyList<GraphRequest> requests);

    /// <summary>Checks a request's tensors against the declared inputs: every input present, no unknown ones, types and fixed dimensions right.</summary>
    public void CheckInputs(IReadOnlyDictionary<string, HostTensor> inputs, Func<string, string> fieldOf)
    {
        foreach (string name in inputs.Keys)
        {
            if (!Inputs.Any(i => i.Name == name)) throw new VisionInputException(fieldOf(name), $"'{name}' is not an input of this model (inputs: {string.Join(", ", Inputs.Select(i => i.Name))})");
        }
        foreach (TensorSignature input in Inputs)
        {
            if (!inputs.TryGetValue(input.Name, out HostTensor? t)) throw new VisionInputException("inputs", $"input '{input.Name}' {input.Datatype} {TensorSignature.Describe(input.Dims)} is missing");
            input.Check(t, fieldOf(input.Name));
        }
        long? rows = null;
        if (Inputs.Count > 1 && Inputs.All(i => i.Rank > 0 && i.Dims[0] < 0))
        {
            foreach (TensorSignature input in Inputs)
            {
                long r = inputs[input.Name].Shape[0];
                if (rows is not null && r != rows) throw new VisionInputException(fieldOf(input.Name), $"has {r} rows along dimension 0, the other inputs {rows}");
                rows = r;
            }
        }
    }

    /// <exception cref="ModelFileException">model.json, the ONNX graph or a file they name is wrong.</exception>
    public static VisionModel Load(ModelSpec spec)
    {
        VisionSpec vision = VisionSpec.Parse(spec);
        VisionModel model = vision.Frames is { } frames ? FrameVideoModel.Open(vision, frames) : GraphModel.Open(vision);
        try
        {
            model.Bind();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    internal static IReadOnlyList<string>? ReadLabels(string? path) =>
        path is null ? null : [.. File.ReadAllLines(path).Select(l => l.TrimEnd()).Reverse().SkipWhile(l => l.Length == 0).Reverse()];

    /// <summary>Finds the outputs each kind needs and sets up image preprocessing; errors name the ONNX file.</summary>
    private void Bind()
    {
        string source = Spec.OnnxPath ?? Spec.File;
        if (Inputs.Count == 0) throw new ModelFileException(source, "inputs", "the graph has no input");
        if (Kind == VisionKind.Detection)
        {
            BoxesOutput = FindOutput(source, "boxes", o => o.Element == ElementKind.Float32 && o.Rank == 2 && o.Dims[1] == 4, "FP32 [K, 4]");
            LabelsOutput = FindOutput(source, "labels", o => o.Element == ElementKind.Int64 && o.Rank == 1, "INT64 [K]");
            ScoresOutput = FindOutput(source, "scores", o => o.Element == ElementKind.Float32 && o.Rank == 1, "FP32 [K]");
        }
        else
        {
            TensorSignature scores = Outputs.FirstOrDefault(o => o.Element == ElementKind.Float32 && o.Rank == 2)
                ?? throw new ModelFileException(source, "outputs", $"a {Kind.ToString().ToLowerInvariant()} graph needs an FP32 [N, classes] output; it has {Describe(Outputs)}");
            ScoresOutput = scores.Name;
            if (Labels is not null && scores.Dims[1] > 0 && Labels.Count != scores.Dims[1])
            {
                throw new ModelFileException(Spec.File, "labels", $"{Spec.LabelsPath ?? "the labels"} has {Labels.Count} lines, the graph's output '{scores.Name}' has {scores.Dims[1]} classes");
            }
        }
        if (Kind != VisionKind.Video) Images = ImagesFor(PrimaryInput);
    }

    private ImagePreprocessor? ImagesFor(TensorSignature input)
    {
        // [N, 3, H, W] / [N, H, W, 3], or [3, H, W] for graphs that take one image per run (torchvision detection).
        bool nchw = Spec.Preprocessing.Layout == ImageLayout.Nchw;
        int offset = input.Rank == 4 ? 1 : input.Rank == 3 ? 0 : -1;
        if (offset < 0 || input.Element != ElementKind.Float32) return null;
        long channels = nchw ? input.Dims[offset] : input.Dims[offset + 2];
        if (channels is not (3 or -1)) return null;
        long h = Spec.Preprocessing.Height ?? (nchw ? input.Dims[offset + 1] : input.Dims[offset]);
        long w = Spec.Preprocessing.Width ?? (nchw ? input.Dims[offset + 2] : input.Dims[offset + 1]);
        if (h <= 0 || w <= 0) return null;
        long gh = nchw ? input.Dims[offset + 1] : input.Dims[offset], gw = nchw ? input.Dims[offset + 2] : input.Dims[offset + 1];
        if ((gh > 0 && gh != h) || (gw > 0 && gw != w))
        {
            throw new ModelFileException(Spec.File, "preprocessing.resize", $"is [{h}, {w}], the graph's input '{input.Name}' is {TensorSignature.Describe(input.Dims)}");
        }
        return new ImagePreprocessor(Spec.Preprocessing, (int)h, (int)w);
    }

    /// <summary>An encoded image as the primary input: [1, 3, H, W] for batched graphs, [3, H, W] for per-image ones.</summary>
    public HostTensor ImageInput(ReadOnlySpan<byte> encoded, out int width, out int height, string field = "image")
    {
        ImagePreprocessor images = Images ?? throw new VisionInputException(field, $"this model takes no encoded images (its input '{PrimaryInput.Name}' is {TensorSignature.Describe(PrimaryInput.Dims)} and model.json sets no preprocessing.resize); send a tensor", 422);
        HostTensor t = images.ToTensor(encoded, out width, out height, field);
        return PrimaryInput.Rank == 3 ? HostTensor.Of(t.Floats, t.Shape[1..]) : t;
    }

    private string FindOutput(string source, string name, Func<TensorSignature, bool> fits, string expected)
    {
        TensorSignature? byName = Outputs.FirstOrDefault(o => o.Name == name);
        if (byName is not null) return fits(byName) ? name : throw new ModelFileException(source, $"outputs.{name}", $"is {byName.Datatype} {TensorSignature.Describe(byName.Dims)}, expected {expected}");
        TensorSignature[] candidates = [.. Outputs.Where(fits)];
        return candidates.Length == 1 ? candidates[0].Name : throw new ModelFileException(source, "outputs", $"a detection graph needs '{name}' ({expected}); it has {Describe(Outputs)}");
    }

    private static string Describe(IEnumerable<TensorSignature> list) => string.Join(", ", list.Select(o => $"{o.Name} {o.Datatype} {TensorSignature.Describe(o.Dims)}"));

    public abstract void Dispose();
}

/// <summary>Classification, detection and 3D-convolution video: the ONNX graph is the model.</summary>
internal sealed class GraphModel : VisionModel
{
    private readonly OnnxGraph _graph;

    private GraphModel(VisionSpec spec, OnnxGraph graph, IReadOnlyList<string>? labels) : base(spec, labels) => _graph = graph;

    public override IReadOnlyList<TensorSignature> Inputs => _graph.Inputs;
    public override IReadOnlyList<TensorSignature> Outputs => _graph.Outputs;
    public override string Platform => "onnxruntime_onnx";

    public static GraphModel Open(VisionSpec spec)
    {
        OnnxGraph graph = OpenGraph(spec.OnnxPath!, spec.File);
        return new GraphModel(spec, graph, ReadLabels(spec.LabelsPath));
    }

    internal static OnnxGraph OpenGraph(string path, string specFile)
    {
        try
        {
            return new OnnxGraph(path);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            throw new ModelFileException(specFile, "onnx", $"{Path.GetFileName(path)} does not load in ONNX Runtime: {e.Message}");
        }
    }

    public override GraphOutcome[] RunBatch(IReadOnlyList<GraphRequest> requests) => _graph.RunBatch(requests);

    public override void Dispose() => _graph.Dispose();
}
