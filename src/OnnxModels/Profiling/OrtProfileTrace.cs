using System.Text.Json;

namespace Recsys.OnnxModels.Profiling;

/// <summary>A tensor as ONNX Runtime's profiler describes it: element type name and shape.</summary>
public sealed record ProfiledTensor(string Type, long[] Shape)
{
    public long Bytes => Shape.Aggregate(1L, (a, d) => a * d) * OnnxElementTypes.SizeOf(Type);

    public long Elements => Shape.Aggregate(1L, (a, d) => a * d);
}

/// <summary>One node's kernel as it ran: its duration and the shapes it saw (inputs pre-packed into the kernel are missing from <see cref="Inputs"/>).</summary>
public sealed record ProfiledNode(string Name, string OpType, long StartUs, long DurationUs, IReadOnlyList<ProfiledTensor> Inputs, IReadOnlyList<ProfiledTensor> Outputs);

/// <summary>One InferenceSession.Run: its own duration and the top-level nodes it ran, in order.</summary>
public sealed record ProfiledRun(long StartUs, long DurationUs, IReadOnlyList<ProfiledNode> Nodes);

/// <summary>
/// Reads the Chrome-trace JSON ONNX Runtime writes when profiling is on (SessionOptions.EnableProfiling;
/// InferenceSession.EndProfiling returns the path). Session events named "model_run" delimit each
/// Run; "Node" events named "&lt;node&gt;_kernel_time" are the kernels, with microsecond start and
/// duration. Nodes of a subgraph (an If branch) run inside their parent node's kernel time, so only
/// nodes not nested in an earlier node of the same run are kept: the parent carries their time.
/// </summary>
public static class OrtProfileTrace
{
    private const string KernelSuffix = "_kernel_time";

    public static IReadOnlyList<ProfiledRun> Read(string path)
    {
        using FileStream stream = File.OpenRead(path);
        using JsonDocument doc = JsonDocument.Parse(stream);
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new FormatException($"{path}: an ONNX Runtime profile is a JSON array of events");
        var runs = new List<(long Start, long Duration)>();
        var kernels = new List<ProfiledNode>();
        foreach (JsonElement e in doc.RootElement.EnumerateArray())
        {
            string cat = e.TryGetProperty("cat", out JsonElement c) ? c.GetString() ?? "" : "";
            string name = e.TryGetProperty("name", out JsonElement n) ? n.GetString() ?? "" : "";
            if (cat == "Session" && name == "model_run") runs.Add((e.GetProperty("ts").GetInt64(), e.GetProperty("dur").GetInt64()));
            else if (cat == "Node" && name.EndsWith(KernelSuffix, StringComparison.Ordinal))
            {
                JsonElement args = e.GetProperty("args");
                kernels.Add(new ProfiledNode(
                    name[..^KernelSuffix.Length],
                    args.TryGetProperty("op_name", out JsonElement op) ? op.GetString() ?? "" : "",
                    e.GetProperty("ts").GetInt64(),
                    e.GetProperty("dur").GetInt64(),
                    Tensors(args, "input_type_shape"),
                    Tensors(args, "output_type_shape")));
            }
        }
        runs.Sort();
        kernels.Sort((a, b) => a.StartUs != b.StartUs ? a.StartUs.CompareTo(b.StartUs) : b.DurationUs.CompareTo(a.DurationUs));
        var result = new List<ProfiledRun>(runs.Count);
        int k = 0;
        foreach ((long start, long duration) in runs)
        {
            var nodes = new List<ProfiledNode>();
            long end = start + duration, keptUntil = long.MinValue;
            while (k < kernels.Count && kernels[k].StartUs < start) k++;
            while (k < kernels.Count && kernels[k].StartUs <= end)
            {
                ProfiledNode node = kernels[k++];
                if (node.StartUs < keptUntil) continue;
                nodes.Add(node);
                keptUntil = node.StartUs + node.DurationUs;
            }
            result.Add(new ProfiledRun(start, duration, nodes));
        }
        return result;
    }

    private static ProfiledTensor[] Tensors(JsonElement args, string property)
    {
        if (!args.TryGetProperty(property, out JsonElement list) || list.ValueKind != JsonValueKind.Array) return [];
        var tensors = new List<ProfiledTensor>();
        foreach (JsonElement t in list.EnumerateArray())
        {
            foreach (JsonProperty p in t.EnumerateObject())
            {
                tensors.Add(new ProfiledTensor(p.Name, p.Value.ValueKind == JsonValueKind.Array ? [.. p.Value.EnumerateArray().Select(d => d.GetInt64())] : []));
            }
        }
        return [.. tensors];
    }
}
