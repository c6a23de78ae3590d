using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Seq2Seq;
using Recsys.OnnxModels.Vision;

namespace Recsys.OnnxModels.Profiling;

/// <summary>
/// How each ONNX model kind serves a request batch, as graph runs to profile:
/// <list type="bullet">
/// <item>classification / detection / 3D video: the graph, one run of the whole batch when its inputs have an open
/// dimension 0, else one run per item (torchvision detectors take one image); other open dimensions are filled with <see cref="OpenDimension"/>.</item>
/// <item>frame-based video: the image model on batch × frames.count frames, one run (averaging the scores is not profiled).</item>
/// <item>seq2seq: the encoder once per batch (source length max_source_length), then the decoder step once per generated token for
/// max_length tokens on batch × beam rows (the model's default beam): the longest request the model allows.</item>
/// </list>
/// </summary>
public static class OnnxWorkloads
{
    public const int OpenDimension = 8;

    public static bool IsOnnxKind(string kind) => kind is "classification" or "detection" or "video" or Seq2SeqSpec.Kind;

    /// <exception cref="ModelFileException">model.json or a graph it names is wrong.</exception>
    public static OnnxProfiler Profiler(ModelSpec spec, string name)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Kind == Seq2SeqSpec.Kind) return Seq2Seq(Seq2SeqSpec.From(spec), name);
        VisionSpec vision = VisionSpec.Parse(spec);
        if (vision.Frames is { } frames)
        {
            string image = FrameImageModel(vision, frames);
            var stage = new OnnxStage("frames", image, (s, b) => SyntheticInputs.For(s, b * frames.Count, batchOpen: true, OpenDimension), _ => 1,
                $"{Path.GetFileName(image)} on batch x {frames.Count} frames in one run");
            return new OnnxProfiler(name, spec.Kind, [stage]);
        }
        string path = vision.OnnxPath!;
        bool batchOpen;
        // Opened as served, so the probe starts no thread pool of its own.
        using (InferenceSession probe = Runtime.OrtSessions.Open(path))
        {
            batchOpen = probe.InputMetadata.Count > 0 && probe.InputMetadata.Values.All(m => m.Dimensions.Length > 0 && m.Dimensions[0] < 0);
        }
        var graph = new OnnxStage("graph", path, (s, b) => SyntheticInputs.For(s, batchOpen ? b : 1, batchOpen, OpenDimension), b => batchOpen ? 1 : b,
            batchOpen ? "one run per batch" : "one run per item (the graph takes no batch dimension)");
        return new OnnxProfiler(name, spec.Kind, [graph]);
    }

    private static OnnxProfiler Seq2Seq(Seq2SeqSpec spec, string name)
    {
        int length = spec.MaxSourceLength, steps = spec.MaxLength, beam = spec.DefaultBeam;
        var encoder = new OnnxStage("encoder", spec.EncoderPath, (s, b) => EncoderInputs(s, b, length, spec), _ => 1,
            $"once per batch, source length {length}");
        var decoder = new OnnxStage("decoder", spec.DecoderPath, (s, b) => DecoderInputs(s, b * beam, length, spec), _ => steps,
            $"{steps} steps (max_length) on batch x beam {beam} rows");
        return new OnnxProfiler(name, Seq2SeqSpec.Kind, [encoder, decoder]);
    }

    private static StageInputs EncoderInputs(InferenceSession session, int batch, int length, Seq2SeqSpec spec)
    {
        OrtValue ids = SyntheticInputs.Tensor(TensorElementType.Int64, [batch, length], Seq2SeqGraphs.SrcIds, spec.UnkId >= 0 ? spec.UnkId : spec.EndId);
        OrtValue lengths = SyntheticInputs.Tensor(TensorElementType.Int64, [batch], Seq2SeqGraphs.SrcLengths, length);
        return new StageInputs([Seq2SeqGraphs.SrcIds, Seq2SeqGraphs.SrcLengths], [ids, lengths]);
    }

    private static StageInputs DecoderInputs(InferenceSession session, int rows, int length, Seq2SeqSpec spec)
    {
        int state = Fixed(session, spec.DecoderPath, Seq2SeqGraphs.State, 1), hidden = Fixed(session, spec.DecoderPath, Seq2SeqGraphs.EncOut, 2);
        return new StageInputs(
            [Seq2SeqGraphs.PrevToken, Seq2SeqGraphs.State, Seq2SeqGraphs.EncOut, Seq2SeqGraphs.SrcMask],
            [
                SyntheticInputs.Tensor(TensorElementType.Int64, [rows], Seq2SeqGraphs.PrevToken, spec.StartId),
                SyntheticInputs.Tensor(TensorElementType.Float, [rows, state], Seq2SeqGraphs.State),
                SyntheticInputs.Tensor(TensorElementType.Float, [rows, length, hidden], Seq2SeqGraphs.EncOut),
                OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1f, rows * length).ToArray(), [rows, length]),
            ]);
    }

    private static int Fixed(InferenceSession session, string file, string input, int axis) =>
        session.InputMetadata.TryGetValue(input, out NodeMetadata? m) && m.Dimensions.Length > axis && m.Dimensions[axis] > 0
            ? m.Dimensions[axis]
            : throw new ModelFileException(file, $"inputs.{input}", $"axis {axis} must be fixed by the graph");

    /// <summary>The ONNX file a frame-based video model classifies frames with (the same resolution as <see cref="VisionModel.Load"/>).</summary>
    private static string FrameImageModel(VisionSpec spec, FrameSampling frames)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(spec.File))!;
        if (frames.Model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return Path.Combine(directory, Path.GetFileName(frames.Model));
        var repository = new ModelRepository(Path.GetDirectoryName(Path.GetDirectoryName(directory))!);
        string version = ModelRepository.IsSafeName(frames.Model) ? repository.NewestVersion(frames.Model) ?? "" : "";
        if (version.Length == 0) throw new ModelFileException(spec.File, "frames.model", $"no model '{frames.Model}' in {repository.Root}");
        return VisionSpec.Parse(repository.LoadSpec(frames.Model, version)).OnnxPath
            ?? throw new ModelFileException(spec.File, "frames.model", $"'{frames.Model}' has no ONNX graph");
    }
}
