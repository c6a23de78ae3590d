using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Recsys.OnnxModels.Profiling;

/// <summary>
/// One ONNX graph of a workload and how a request of a given batch size runs it: the inputs of one
/// run and how many runs a request takes (a per-image detector runs once per image, a decoder once
/// per generated token). Inputs are synthetic and fixed per batch size, so every run sees the same
/// shapes and takes the same path through data-dependent graphs.
/// </summary>
/// <param name="Label">Prefix of the operator names when a workload has more than one stage ("encoder", "decoder").</param>
/// <param name="Inputs">Input tensors of one run at a batch size; the caller disposes them.</param>
/// <param name="RunsPerPass">Runs of this graph per request batch.</param>
/// <param name="Note">How the stage maps a batch onto runs, for the report.</param>
public sealed record OnnxStage(string Label, string Path, Func<InferenceSession, int, StageInputs> Inputs, Func<int, int> RunsPerPass, string Note);

/// <summary>The named OrtValues of one run.</summary>
public sealed class StageInputs(IReadOnlyList<string> names, IReadOnlyList<OrtValue> values) : IDisposable
{
    public IReadOnlyList<string> Names { get; } = names;

    public IReadOnlyList<OrtValue> Values { get; } = values;

    public void Dispose()
    {
        foreach (OrtValue v in Values) v.Dispose();
    }
}

/// <summary>Synthetic input tensors: deterministic, so a data-dependent graph (detection) takes the same path every run.</summary>
public static class SyntheticInputs
{
    /// <summary>Every input of the session, open dimensions filled: dimension 0 with <paramref name="batch"/> when <paramref name="batchOpen"/>, others with <paramref name="openDim"/>.</summary>
    public static StageInputs For(InferenceSession session, int batch, bool batchOpen, int openDim)
    {
        var names = new List<string>();
        var values = new List<OrtValue>();
        foreach ((string name, NodeMetadata meta) in session.InputMetadata)
        {
            long[] shape = [.. meta.Dimensions.Select((d, i) => d >= 0 ? d : i == 0 && batchOpen ? batch : openDim)];
            names.Add(name);
            values.Add(Tensor(meta.ElementDataType, shape, name));
        }
        return new StageInputs(names, values);
    }

    public static OrtValue Tensor(TensorElementType type, long[] shape, string name, long intValue = 0)
    {
        long count = shape.Aggregate(1L, (a, d) => a * d);
        return type switch
        {
            TensorElementType.Float => OrtValue.CreateTensorValueFromMemory(Floats(count), shape),
            TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(intValue, (int)count).ToArray(), shape),
            TensorElementType.Int32 => OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat((int)intValue, (int)count).ToArray(), shape),
            TensorElementType.Bool => OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(true, (int)count).ToArray(), shape),
            _ => throw new NotSupportedException($"input '{name}' is {type}: the characterization fills only float, int64, int32 and bool inputs"),
        };
    }

    /// <summary>Values in [0, 1) from a fixed linear congruential sequence.</summary>
    public static float[] Floats(long count)
    {
        var data = new float[count];
        uint state = 12345;
        for (long i = 0; i < count; i++)
        {
            state = state * 1664525 + 1013904223;
            data[i] = (state >> 8) / 16777216f;
        }
        return data;
    }
}
