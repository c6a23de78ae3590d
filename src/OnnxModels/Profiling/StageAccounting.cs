using Recsys.DenseCompute.Characterization;

namespace Recsys.OnnxModels.Profiling;

/// <summary>
/// The operators of one profiled run of a graph, in the order they ran, and the peak of live
/// activations over that order. A node name that runs twice in a run gets "#2", "#3", ... so every
/// operator has its own timing. Tensor sizes are the shapes the profiler recorded for node outputs
/// and the fed inputs; outputs a node does not report count as 0 bytes.
/// </summary>
public sealed record StageAccounting(IReadOnlyList<OperatorCost> Operators, long MaxLiveActivationBytes)
{
    public static StageAccounting Of(ProfiledRun run, OnnxGraphFile graph, IReadOnlyDictionary<string, ProfiledTensor> inputs)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(graph);
        var tensors = new Dictionary<string, ProfiledTensor>(inputs, StringComparer.Ordinal);
        var ops = new List<OperatorCost>(run.Nodes.Count);
        var nodes = new List<OnnxNode?>(run.Nodes.Count);
        var steps = new List<GraphStep>(run.Nodes.Count);
        var names = UniqueNames(run).Select(u => u.Name).ToList();
        for (int i = 0; i < run.Nodes.Count; i++)
        {
            ProfiledNode ran = run.Nodes[i];
            OnnxNode? node = graph.Node(ran.Name);
            OperatorCost cost = OnnxNodeAccounting.Cost(ran, node, graph, tensors);
            ops.Add(cost with { Name = names[i] });
            nodes.Add(node);
            if (node is null) continue;
            string[] outputs = [.. node.Outputs.Where(o => o.Length > 0)];
            for (int o = 0; o < outputs.Length; o++) tensors[outputs[o]] = o < ran.Outputs.Count && outputs.Length == ran.Outputs.Count ? ran.Outputs[o] : new ProfiledTensor("float", [0]);
            steps.Add(new GraphStep(names[i], [.. node.Inputs.Where(t => t.Length > 0 && !graph.IsInitializer(t) && tensors.ContainsKey(t)).Distinct()], outputs));
        }
        MarkAttentionSoftmax(ops, nodes);
        var bytes = tensors.ToDictionary(t => t.Key, t => t.Value.Bytes, StringComparer.Ordinal);
        long live;
        try
        {
            live = LiveActivations.Peak(steps, bytes);
        }
        catch (ArgumentException)
        {
            // A graph ONNX Runtime rewrote so a tensor is written twice: fall back to the largest single step.
            live = steps.Count == 0 ? 0 : steps.Max(s => s.Inputs.Concat(s.Outputs).Distinct().Sum(t => bytes.GetValueOrDefault(t)));
        }
        return new StageAccounting(ops, live);
    }

    /// <summary>Each node's time in a run under its unique name (repeats numbered in run order).</summary>
    public static IEnumerable<(string Name, long DurationUs)> UniqueNames(ProfiledRun run)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (ProfiledNode node in run.Nodes)
        {
            string name = node.Name.Length == 0 ? node.OpType : node.Name;
            int count = seen[name] = seen.GetValueOrDefault(name) + 1;
            yield return (count == 1 ? name : $"{name}#{count}", node.DurationUs);
        }
    }

    /// <summary>A Softmax whose output reaches an attention product (through shape-only ops) normalizes attention scores: it is attention too.</summary>
    private static void MarkAttentionSoftmax(List<OperatorCost> ops, List<OnnxNode?> nodes)
    {
        var consumers = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++)
        {
            foreach (string input in nodes[i]?.Inputs ?? [])
            {
                if (!consumers.TryGetValue(input, out List<int>? list)) consumers[input] = list = [];
                list.Add(i);
            }
        }
        for (int i = 0; i < nodes.Count; i++)
        {
            if (nodes[i] is not { OpType: "Softmax" } softmax) continue;
            if (Reaches(softmax.Outputs, depth: 4)) ops[i] = ops[i] with { Kind = OperatorKind.Attention };
        }

        bool Reaches(IEnumerable<string> tensors, int depth)
        {
            if (depth == 0) return false;
            foreach (string t in tensors)
            {
                foreach (int c in consumers.GetValueOrDefault(t) ?? [])
                {
                    if (ops[c].Kind == OperatorKind.Attention) return true;
                    if (nodes[c] is { } next && OnnxNodeAccounting.ShapeOnly.Contains(next.OpType) && Reaches(next.Outputs, depth - 1)) return true;
                }
            }
            return false;
        }
    }
}

/// <summary>Parameters of ONNX graphs from their initializers: a floating-point rank-2 initializer a Gather reads rows of is an embedding table, the rest dense.</summary>
public static class OnnxParameters
{
    public static ParameterSummary Summarize(IEnumerable<string> paths)
    {
        long dense = 0, embedding = 0, denseBytes = 0, embeddingBytes = 0;
        var densePrecisions = new SortedSet<string>(StringComparer.Ordinal);
        var embeddingPrecisions = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string path in paths)
        {
            OnnxGraphFile graph = OnnxGraphFile.Read(path);
            var tables = new HashSet<string>(graph.Nodes.Where(n => n.OpType == "Gather" && n.Inputs.Count >= 1).Select(n => n.Inputs[0]), StringComparer.Ordinal);
            foreach (OnnxInitializer init in graph.Initializers.Values)
            {
                if (tables.Contains(init.Name) && init.Dims.Length == 2 && init.DataType is (1 or 10 or 16))
                {
                    embedding += init.Elements;
                    embeddingBytes += init.Bytes;
                    embeddingPrecisions.Add(OnnxElementTypes.Name(init.DataType));
                }
                else
                {
                    dense += init.Elements;
                    denseBytes += init.Bytes;
                    densePrecisions.Add(OnnxElementTypes.Name(init.DataType));
                }
            }
        }
        return new ParameterSummary(dense, embedding, denseBytes, embeddingBytes,
            densePrecisions.Count == 0 ? "-" : string.Join("+", densePrecisions), embeddingPrecisions.Count == 0 ? "-" : string.Join("+", embeddingPrecisions));
    }
}
