using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Runtime;
using Recsys.OnnxModels.Vision;

namespace Recsys.OnnxModels.Seq2Seq;

/// <summary>
/// The encoder and decoder-step sessions of a seq2seq model, checked against the graph contract
/// (names, element types, ranks, and the fixed widths H, D, V agreeing between the two graphs;
/// see tools/make_seq2seq_fixtures.py and docs/MODELS.md). A graph that breaks it fails at load
/// naming the file and the input or output.
/// </summary>
public sealed class Seq2SeqGraphs : IDisposable
{
    public const string SrcIds = "src_ids", SrcLengths = "src_lengths", EncOut = "enc_out", State = "state";
    public const string PrevToken = "prev_token", SrcMask = "src_mask", LogProbs = "log_probs", NewState = "new_state";

    private static readonly string[] EncoderInputs = [SrcIds, SrcLengths];
    private static readonly string[] EncoderOutputs = [EncOut, State];
    private static readonly string[] DecoderInputs = [PrevToken, State, EncOut, SrcMask];
    private static readonly string[] DecoderOutputs = [LogProbs, NewState];

    private readonly InferenceSession _encoder;
    private readonly InferenceSession _decoder;
    private readonly RunOptions _run = new();

    private Seq2SeqGraphs(InferenceSession encoder, InferenceSession decoder, int hidden, int stateWidth, int vocabulary, string encoderPath)
    {
        _encoder = encoder;
        EncoderInputSignatures = TensorSignature.Read(encoder, inputs: true, encoderPath);
        EncoderOutputSignatures = TensorSignature.Read(encoder, inputs: false, encoderPath);
        _decoder = decoder;
        Hidden = hidden;
        StateWidth = stateWidth;
        Vocabulary = vocabulary;
    }

    /// <summary>H: width of one encoder output vector.</summary>
    public int Hidden { get; }

    /// <summary>D: width of the recurrent state of one hypothesis.</summary>
    public int StateWidth { get; }

    /// <summary>V: entries of the log-probability vector.</summary>
    public int Vocabulary { get; }

    public InferenceSession Encoder => _encoder;

    /// <summary>The encoder's inputs as it declares them, for the raw KServe /infer (src_ids [-1, -1], src_lengths [-1]).</summary>
    public IReadOnlyList<TensorSignature> EncoderInputSignatures { get; }

    /// <summary>The encoder's outputs as it declares them (enc_out [-1, -1, H], state [-1, D]).</summary>
    public IReadOnlyList<TensorSignature> EncoderOutputSignatures { get; }

    public static Seq2SeqGraphs Open(string encoderPath, string decoderPath)
    {
        InferenceSession encoder = OpenChecked(encoderPath);
        InferenceSession? decoder = null;
        try
        {
            decoder = OpenChecked(decoderPath);
            var e = new Contract(encoderPath, encoder);
            var d = new Contract(decoderPath, decoder);
            e.ExactInputs(EncoderInputs);
            e.Input(SrcIds, TensorElementType.Int64, 2);
            e.Input(SrcLengths, TensorElementType.Int64, 1);
            int hidden = e.FixedDim(e.Output(EncOut, TensorElementType.Float, 3), EncOut, 2, "output");
            int stateWidth = e.FixedDim(e.Output(State, TensorElementType.Float, 2), State, 1, "output");

            d.ExactInputs(DecoderInputs);
            d.Input(PrevToken, TensorElementType.Int64, 1);
            d.SameDim(d.Input(State, TensorElementType.Float, 2), State, 1, stateWidth, "input", $"the encoder's {State} width");
            d.SameDim(d.Input(EncOut, TensorElementType.Float, 3), EncOut, 2, hidden, "input", $"the encoder's {EncOut} width");
            d.Input(SrcMask, TensorElementType.Float, 2);
            int vocabulary = d.FixedDim(d.Output(LogProbs, TensorElementType.Float, 2), LogProbs, 1, "output");
            d.SameDim(d.Output(NewState, TensorElementType.Float, 2), NewState, 1, stateWidth, "output", $"the {State} width");
            return new Seq2SeqGraphs(encoder, decoder, hidden, stateWidth, vocabulary, encoderPath);
        }
        catch
        {
            encoder.Dispose();
            decoder?.Dispose();
            throw;
        }
    }

    private static InferenceSession OpenChecked(string path)
    {
        try
        {
            return OrtSessions.Open(path);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelFileException(path, "graph", $"ONNX Runtime cannot load it: {e.Message}");
        }
    }

    /// <summary>Encodes a right-padded batch: ids [batch, width], lengths [batch]; returns enc_out [batch, width, H] and state [batch, D].</summary>
    public (float[] EncOut, float[] State) Encode(long[] ids, long[] lengths, int batch, int width)
    {
        using var idsValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, ids.AsMemory(0, batch * width), [batch, width]);
        using var lengthsValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, lengths.AsMemory(0, batch), [batch]);
        var encOut = new float[batch * width * Hidden];
        var state = new float[batch * StateWidth];
        using var encOutValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, encOut.AsMemory(), [batch, width, Hidden]);
        using var stateValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, state.AsMemory(), [batch, StateWidth]);
        _encoder.Run(_run, EncoderInputs, [idsValue, lengthsValue], EncoderOutputs, [encOutValue, stateValue]);
        return (encOut, state);
    }

    /// <summary>
    /// One decoder step over <paramref name="rows"/> hypotheses whose sources are padded to
    /// <paramref name="width"/>; writes log_probs [rows, V] and new_state [rows, D] into the given buffers.
    /// </summary>
    public void Step(int rows, int width, long[] prev, float[] state, float[] encOut, float[] mask, float[] logProbs, float[] newState)
    {
        using var prevValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, prev.AsMemory(0, rows), [rows]);
        using var stateValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, state.AsMemory(0, rows * StateWidth), [rows, StateWidth]);
        using var encValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, encOut.AsMemory(0, rows * width * Hidden), [rows, width, Hidden]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, mask.AsMemory(0, rows * width), [rows, width]);
        using var logValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, logProbs.AsMemory(0, rows * Vocabulary), [rows, Vocabulary]);
        using var newStateValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, newState.AsMemory(0, rows * StateWidth), [rows, StateWidth]);
        _decoder.Run(_run, DecoderInputs, [prevValue, stateValue, encValue, maskValue], DecoderOutputs, [logValue, newStateValue]);
    }

    public void Dispose()
    {
        _encoder.Dispose();
        _decoder.Dispose();
        _run.Dispose();
    }

    /// <summary>Checks one graph's inputs and outputs; errors name the file and the tensor.</summary>
    private readonly struct Contract(string file, InferenceSession session)
    {
        public void ExactInputs(string[] expected)
        {
            string[] actual = [.. session.InputMetadata.Keys.Order(StringComparer.Ordinal)];
            if (!actual.SequenceEqual(expected.Order(StringComparer.Ordinal)))
            {
                throw new ModelFileException(file, "inputs", $"are [{string.Join(", ", actual)}]; the seq2seq contract needs exactly [{string.Join(", ", expected)}]");
            }
        }

        public NodeMetadata Input(string name, TensorElementType type, int rank) => Check(session.InputMetadata, name, type, rank, "input");

        public NodeMetadata Output(string name, TensorElementType type, int rank) => Check(session.OutputMetadata, name, type, rank, "output");

        private NodeMetadata Check(IReadOnlyDictionary<string, NodeMetadata> nodes, string name, TensorElementType type, int rank, string role)
        {
            if (!nodes.TryGetValue(name, out NodeMetadata? node)) throw new ModelFileException(file, $"{role}s.{name}", $"missing (the graph has {string.Join(", ", nodes.Keys)})");
            if (!node.IsTensor || node.ElementDataType != type) throw new ModelFileException(file, $"{role}s.{name}", $"is {(node.IsTensor ? node.ElementDataType.ToString() : node.OnnxValueType.ToString())}, the contract needs a {type} tensor");
            if (node.Dimensions.Length != rank) throw new ModelFileException(file, $"{role}s.{name}", $"has rank {node.Dimensions.Length}, the contract needs rank {rank}");
            return node;
        }

        public int FixedDim(NodeMetadata node, string name, int axis, string role)
        {
            int d = node.Dimensions[axis];
            return d > 0 ? d : throw new ModelFileException(file, $"{role}s.{name}", $"axis {axis} is dynamic ('{node.SymbolicDimensions[axis]}'); the contract needs it fixed by the graph");
        }

        public void SameDim(NodeMetadata node, string name, int axis, int expected, string role, string what)
        {
            int d = FixedDim(node, name, axis, role);
            if (d != expected) throw new ModelFileException(file, $"{role}s.{name}", $"axis {axis} is {d}, {what} is {expected}");
        }
    }
}
