using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Recsys.OnnxModels.Vision;

/// <summary>One input or output of a graph as the graph declares it; -1 marks a dimension the graph leaves open.</summary>
public sealed record TensorSignature(string Name, ElementKind Element, long[] Dims, string?[] SymbolicDims)
{
    public int Rank => Dims.Length;

    /// <summary>The KServe v2 datatype name.</summary>
    public string Datatype => Element switch
    {
        ElementKind.Float32 => "FP32",
        ElementKind.Int64 => "INT64",
        _ => "UINT8",
    };

    public static ElementKind? KindOf(string datatype) => datatype switch
    {
        "FP32" => ElementKind.Float32,
        "INT64" => ElementKind.Int64,
        "UINT8" => ElementKind.UInt8,
        _ => null,
    };

    /// <summary>Refuses a tensor whose type, rank or fixed dimensions differ from the declaration, naming <paramref name="field"/>.</summary>
    public void Check(HostTensor tensor, string field)
    {
        if (tensor.Element != Element) throw new VisionInputException(field, $"input '{Name}' is {Datatype}, the request sent {new TensorSignature(Name, tensor.Element, [], []).Datatype}");
        if (tensor.Rank != Rank) throw new VisionInputException(field, $"input '{Name}' has shape {Describe(Dims)}, the request sent {Describe(tensor.Shape)} (rank {tensor.Rank}, expected {Rank})");
        for (int i = 0; i < Rank; i++)
        {
            if (tensor.Shape[i] <= 0) throw new VisionInputException(field, $"dimension {i} is {tensor.Shape[i]}, must be positive");
            if (Dims[i] >= 0 && tensor.Shape[i] != Dims[i]) throw new VisionInputException(field, $"input '{Name}' has shape {Describe(Dims)}, the request sent {Describe(tensor.Shape)} (dimension {i} must be {Dims[i]})");
        }
    }

    public static string Describe(IEnumerable<long> dims) => "[" + string.Join(", ", dims.Select(d => d < 0 ? "-1" : d.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]";

    internal static IReadOnlyList<TensorSignature> Read(InferenceSession session, bool inputs, string onnxFile)
    {
        IReadOnlyDictionary<string, NodeMetadata> metadata = inputs ? session.InputMetadata : session.OutputMetadata;
        IReadOnlyList<string> order = inputs ? session.InputNames : session.OutputNames;
        var list = new List<TensorSignature>(order.Count);
        foreach (string name in order)
        {
            NodeMetadata node = metadata[name];
            string side = inputs ? "inputs" : "outputs";
            if (!node.IsTensor) throw new Recsys.DenseCompute.Models.ModelFileException(onnxFile, $"{side}.{name}", "is not a tensor; served graphs take and give tensors");
            ElementKind element = node.ElementDataType switch
            {
                TensorElementType.Float => ElementKind.Float32,
                TensorElementType.Int64 => ElementKind.Int64,
                TensorElementType.UInt8 => ElementKind.UInt8,
                _ => throw new Recsys.DenseCompute.Models.ModelFileException(onnxFile, $"{side}.{name}", $"is {node.ElementDataType}; served graphs use float, int64 or uint8"),
            };
            long[] dims = [.. node.Dimensions.Select(d => d < 0 ? -1L : d)];
            string?[] symbolic = [.. node.SymbolicDimensions.Select(s => string.IsNullOrEmpty(s) ? null : s)];
            list.Add(new TensorSignature(name, element, dims, symbolic));
        }
        return list;
    }
}
