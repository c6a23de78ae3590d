using Recsys.DenseCompute.Characterization;

namespace Recsys.OnnxModels.Profiling;

/// <summary>
/// Flops and bytes of one ONNX node as ONNX Runtime ran it, from the shapes its profiler saw and
/// the weights the (optimized) graph wires into it. Conventions, as for our own kernels
/// (<see cref="OperatorAccounting"/>): a multiply-add is 2 flops, a bias add 1 per output,
/// activations (Relu, Sigmoid, Tanh, Softmax) are not counted, elementwise arithmetic (Add, Mul, ...)
/// is 1 flop per output element, data movement (Reshape, Gather of activations, ...) 0 flops.
/// <list type="bullet">
/// <item>Conv (incl. ORT's FusedConv and NCHWc Conv): 2·N·M·out·(C/group)·k + N·M·out per bias and per fused sum input;
/// weights M·(C/group)·k plus M bias values. group &gt; 1 is a grouped (depthwise when C/group = 1) conv.</item>
/// <item>Gemm / FusedGemm: Y[M×N] = A·B (+C): 2·M·N·K (+ M·N); MatMul: 2·|Y|·K. A product with a weight
/// (initializer) operand is FC/GEMM; of two activations (scores = Q·Kᵀ, context = p·V) it is attention.</item>
/// <item>GRU / LSTM / RNN with g = 3 / 4 / 1 gates: per step and sequence 2·g·H·(I + H) + 2·g·H (both biases).</item>
/// <item>Gather from a floating-point initializer of rank 2: an embedding lookup of rows of the table's row size, 0 flops (an int64 index table is data movement).</item>
/// </list>
/// </summary>
public static class OnnxNodeAccounting
{
    private static readonly HashSet<string> ConvOps = new(StringComparer.Ordinal) { "Conv", "FusedConv", "NhwcConv" };
    private static readonly HashSet<string> GemmOps = new(StringComparer.Ordinal) { "Gemm", "FusedGemm" };
    private static readonly HashSet<string> MatMulOps = new(StringComparer.Ordinal) { "MatMul", "FusedMatMul" };
    private static readonly HashSet<string> Elementwise = new(StringComparer.Ordinal) { "Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Pow", "Sqrt", "Neg", "Reciprocal", "Exp", "Log" };

    /// <summary>Op types that only move or re-view data: a Softmax reaching an attention product through them is attention.</summary>
    public static readonly IReadOnlySet<string> ShapeOnly = new HashSet<string>(StringComparer.Ordinal) { "Unsqueeze", "Squeeze", "Reshape", "Transpose", "Cast", "Flatten", "Identity" };

    /// <param name="ran">The node as the profiler recorded it.</param>
    /// <param name="node">The node in the optimized graph (null if ONNX Runtime made it up and did not save it: then only activations count).</param>
    /// <param name="graph">The optimized graph, for initializer shapes.</param>
    /// <param name="tensors">Shapes of the activations seen so far, by tensor name.</param>
    public static OperatorCost Cost(ProfiledNode ran, OnnxNode? node, OnnxGraphFile graph, IReadOnlyDictionary<string, ProfiledTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(ran);
        IReadOnlyList<string> inputs = node?.Inputs ?? [];
        long weightBytes = 0, activationIn = 0;
        string precision = "fp32";
        foreach (string input in inputs)
        {
            if (input.Length == 0) continue;
            if (graph.Initializers.TryGetValue(input, out OnnxInitializer? init))
            {
                weightBytes += init.Bytes;
                if (init.DataType is 10 or 16 or 3 or 2) precision = OnnxElementTypes.Name(init.DataType);
            }
            else if (tensors.TryGetValue(input, out ProfiledTensor? t)) activationIn += t.Bytes;
        }
        if (node is null) activationIn = ran.Inputs.Sum(t => t.Bytes);
        long activationOut = ran.Outputs.Sum(t => t.Bytes);
        string op = ran.OpType;

        if (ConvOps.Contains(op) && ran.Inputs.Count >= 1 && ran.Outputs.Count >= 1) return Conv(ran, node, graph, activationIn, activationOut, precision);
        if (GemmOps.Contains(op) && ran.Inputs.Count >= 1 && ran.Outputs.Count >= 1 && ran.Outputs[0].Shape.Length == 2)
        {
            long[] y = ran.Outputs[0].Shape;
            long m = y[0], n = y[1], k = m > 0 ? ran.Inputs[0].Elements / m : 0;
            bool bias = inputs.Count >= 3 && inputs[2].Length > 0;
            bool weighted = inputs.Count >= 2 && graph.IsInitializer(inputs[1]);
            return new OperatorCost(ran.Name, weighted ? OperatorKind.Gemm : OperatorKind.Attention, $"{op} {m}x{k} -> {n}", precision,
                2 * m * n * k + (bias ? m * n : 0), weightBytes, activationIn, activationOut);
        }
        if (MatMulOps.Contains(op) && ran.Inputs.Count >= 1 && ran.Outputs.Count >= 1)
        {
            long[] y = ran.Outputs[0].Shape, a = ran.Inputs[0].Shape;
            long rows = y.Length >= 2 ? y[^2] : 1;
            long k = a.Length switch
            {
                0 => 1,
                1 => a[0],
                _ => a[^2] == rows ? a[^1] : a[^2],
            };
            bool weighted = inputs.Take(2).Any(graph.IsInitializer);
            return new OperatorCost(ran.Name, weighted ? OperatorKind.Gemm : OperatorKind.Attention, $"{op} {Dims(a)} · K={k} -> {Dims(y)}", precision,
                2 * ran.Outputs[0].Elements * k, weightBytes, activationIn, activationOut);
        }
        if (op is "GRU" or "LSTM" or "RNN" && ran.Inputs.Count >= 1) return Recurrent(ran, node, graph, weightBytes, activationIn, activationOut, precision);
        if (op == "Gather" && inputs.Count >= 2 && graph.Initializers.TryGetValue(inputs[0], out OnnxInitializer? table) && table.Dims.Length == 2 && table.DataType is (1 or 10 or 16) && ran.Outputs.Count == 1)
        {
            int rowBytes = (int)(table.Dims[1] * OnnxElementTypes.Size(table.DataType));
            long rows = table.Dims[1] > 0 ? ran.Outputs[0].Elements / table.Dims[1] : 0;
            long indexBytes = tensors.TryGetValue(inputs[1], out ProfiledTensor? idx) ? idx.Bytes : rows * sizeof(long);
            return new OperatorCost(ran.Name, OperatorKind.EmbeddingLookup, $"{table.Dims[0]}x{table.Dims[1]} rows={rows}", OnnxElementTypes.Name(table.DataType),
                0, rows * rowBytes, indexBytes, activationOut, GatherRowBytes: Math.Max(1, rowBytes));
        }
        long flops = Elementwise.Contains(op) ? ran.Outputs.Sum(t => t.Elements) : 0;
        return new OperatorCost(ran.Name, OperatorKind.Other, op, precision, flops, weightBytes, activationIn, activationOut);
    }

    private static OperatorCost Conv(ProfiledNode ran, OnnxNode? node, OnnxGraphFile graph, long activationIn, long activationOut, string precision)
    {
        long[] x = ran.Inputs[0].Shape, y = ran.Outputs[0].Shape;
        long[] w = ran.Inputs.Count >= 2 ? ran.Inputs[1].Shape
            : node is { Inputs.Count: >= 2 } && graph.Initializers.TryGetValue(node.Inputs[1], out OnnxInitializer? init) ? init.Dims : [];
        if (x.Length < 3 || y.Length != x.Length || w.Length != x.Length) return new OperatorCost(ran.Name, OperatorKind.Conv, $"{ran.OpType} (shapes unknown)", precision, 0, 0, activationIn, activationOut);
        long group = node?.IntAttributes.GetValueOrDefault("group", 1) ?? 1;
        if (group < 1) group = 1;
        long n = y[0], m = y[1], c = x[1];
        long outSpatial = 1, kernel = 1;
        for (int i = 2; i < y.Length; i++)
        {
            outSpatial *= y[i];
            kernel *= w[i];
        }
        long perGroupIn = c / group;
        bool bias = node is null ? ran.Inputs.Count >= 3 : node.Inputs.Count >= 3 && node.Inputs[2].Length > 0;
        bool sum = node is null ? ran.Inputs.Count >= 4 : node.Inputs.Count >= 4 && node.Inputs[3].Length > 0;
        long outputs = n * m * outSpatial;
        long flops = 2 * outputs * perGroupIn * kernel + (bias ? outputs : 0) + (sum ? outputs : 0);
        long weightBytes = (m * perGroupIn * kernel + (bias ? m : 0)) * sizeof(float);
        string kernelText = string.Join("x", w.Skip(2));
        string shape = group == 1 ? $"{c}->{m} k{kernelText} out {string.Join("x", y.Skip(2))}"
            : $"{c}->{m} k{kernelText} g{group}{(perGroupIn == 1 ? " depthwise" : "")} out {string.Join("x", y.Skip(2))}";
        return new OperatorCost(ran.Name, group > 1 ? OperatorKind.GroupedConv : OperatorKind.Conv, shape, precision, flops, weightBytes, activationIn, activationOut);
    }

    private static OperatorCost Recurrent(ProfiledNode ran, OnnxNode? node, OnnxGraphFile graph, long weightBytes, long activationIn, long activationOut, string precision)
    {
        int gates = ran.OpType switch { "GRU" => 3, "LSTM" => 4, _ => 1 };
        long[] x = ran.Inputs[0].Shape;
        long[] w = node is { Inputs.Count: >= 2 } && graph.Initializers.TryGetValue(node.Inputs[1], out OnnxInitializer? wi) ? wi.Dims
            : ran.Inputs.Count >= 2 ? ran.Inputs[1].Shape : [];
        if (x.Length != 3 || w.Length != 3) return new OperatorCost(ran.Name, OperatorKind.Recurrent, $"{ran.OpType} (shapes unknown)", precision, 0, weightBytes, activationIn, activationOut);
        bool batchFirst = node?.IntAttributes.GetValueOrDefault("layout", 0) == 1;
        long seq = batchFirst ? x[1] : x[0], batch = batchFirst ? x[0] : x[1], input = x[2];
        long directions = w[0];
        long hidden = node?.IntAttributes.GetValueOrDefault("hidden_size", 0) is > 0 and var h ? h : w[1] / gates;
        bool bias = node is { Inputs.Count: >= 4 } && node.Inputs[3].Length > 0;
        long perStep = 2 * gates * hidden * (input + hidden) + (bias ? 2 * gates * hidden : 0);
        return new OperatorCost(ran.Name, OperatorKind.Recurrent, $"{ran.OpType} {input}->{hidden} steps={seq}{(directions > 1 ? " bidirectional" : "")}", precision,
            seq * batch * directions * perStep, weightBytes, activationIn, activationOut);
    }

    private static string Dims(long[] shape) => $"[{string.Join(",", shape)}]";
}
