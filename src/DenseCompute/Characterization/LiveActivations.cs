namespace Recsys.DenseCompute.Characterization;

/// <summary>One operator of a graph in execution order, by the tensors it reads and writes.</summary>
public sealed record GraphStep(string Name, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

/// <summary>
/// The peak of live activation memory over a graph run in order. A tensor is live from the step
/// that writes it (graph inputs: from the start) through the last step that reads it (graph
/// outputs: to the end). It counts tensors, not a runtime's buffers, so it is the least memory
/// any runtime needs for that order; ONNX graphs fill it from their node list the same way.
/// </summary>
public static class LiveActivations
{
    public static long Peak(IReadOnlyList<GraphStep> steps, IReadOnlyDictionary<string, long> tensorBytes)
    {
        var born = new Dictionary<string, int>(StringComparer.Ordinal);
        var lastUse = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int s = 0; s < steps.Count; s++)
        {
            foreach (string input in steps[s].Inputs)
            {
                Size(tensorBytes, input, steps[s].Name);
                born.TryAdd(input, -1);
                lastUse[input] = s;
            }
            foreach (string output in steps[s].Outputs)
            {
                Size(tensorBytes, output, steps[s].Name);
                if (born.TryGetValue(output, out int at) && at != s) throw new ArgumentException($"tensor '{output}' is written by step '{steps[s].Name}' after being used or written earlier", nameof(steps));
                born[output] = s;
                lastUse.TryAdd(output, steps.Count);
            }
        }
        long peak = 0;
        for (int s = 0; s < steps.Count; s++)
        {
            long live = 0;
            foreach ((string tensor, int from) in born)
            {
                if (from <= s && s <= lastUse[tensor]) live += tensorBytes[tensor];
            }
            peak = Math.Max(peak, live);
        }
        return peak;
    }

    private static long Size(IReadOnlyDictionary<string, long> tensorBytes, string tensor, string step) =>
        tensorBytes.TryGetValue(tensor, out long bytes) ? bytes : throw new ArgumentException($"step '{step}' uses tensor '{tensor}', which has no size", nameof(tensorBytes));
}
