using Microsoft.ML.OnnxRuntime;
using Recsys.OnnxModels.Runtime;

namespace Recsys.OnnxModels.Vision;

/// <summary>
/// One ONNX graph and its declared inputs and outputs. Runs single requests, or several at once
/// concatenated along dimension 0 when the graph is batchable (every input and output has an open
/// dimension 0 of the same symbolic name); otherwise a batch is run request by request.
/// </summary>
public sealed class OnnxGraph : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();

    public OnnxGraph(string path)
    {
        _session = OrtSessions.Open(path);
        try
        {
            Path = path;
            Inputs = TensorSignature.Read(_session, inputs: true, path);
            Outputs = TensorSignature.Read(_session, inputs: false, path);
            Batchable = IsBatchable(Inputs, Outputs);
        }
        catch
        {
            _session.Dispose();
            throw;
        }
    }

    public string Path { get; }
    public IReadOnlyList<TensorSignature> Inputs { get; }
    public IReadOnlyList<TensorSignature> Outputs { get; }

    /// <summary>True when requests may be concatenated along dimension 0 into one run.</summary>
    public bool Batchable { get; }

    public TensorSignature Input(string name) => Inputs.FirstOrDefault(i => i.Name == name) ?? throw new KeyNotFoundException(name);

    private static bool IsBatchable(IReadOnlyList<TensorSignature> inputs, IReadOnlyList<TensorSignature> outputs)
    {
        if (inputs.Count == 0 || outputs.Count == 0) return false;
        string? batchName = inputs[0].Rank > 0 ? inputs[0].SymbolicDims[0] : null;
        foreach (TensorSignature t in inputs.Concat(outputs))
        {
            if (t.Rank == 0 || t.Dims[0] >= 0) return false;
            // Open dimensions with different names (batch vs detections) are not the same axis.
            if (batchName is not null && t.SymbolicDims[0] is { } name && name != batchName) return false;
        }
        return true;
    }

    /// <summary>Runs one request (its inputs already checked against <see cref="Inputs"/>).</summary>
    public IReadOnlyDictionary<string, HostTensor> Run(IReadOnlyDictionary<string, HostTensor> inputs, IReadOnlyCollection<string>? outputs = null)
    {
        var names = new List<string>(inputs.Count);
        var values = new List<OrtValue>(inputs.Count);
        try
        {
            foreach ((string name, HostTensor tensor) in inputs)
            {
                names.Add(name);
                values.Add(tensor.ToOrtValue());
            }
            IReadOnlyCollection<string> wanted = outputs ?? [.. Outputs.Select(o => o.Name)];
            using IDisposableReadOnlyCollection<OrtValue> results = _session.Run(_runOptions, names, values, wanted);
            var answer = new Dictionary<string, HostTensor>(wanted.Count, StringComparer.Ordinal);
            int i = 0;
            foreach (string name in wanted) answer[name] = HostTensor.FromOrtValue(results.ElementAt(i++), name);
            return answer;
        }
        finally
        {
            foreach (OrtValue v in values) v.Dispose();
        }
    }

    /// <summary>
    /// Runs several requests: one concatenated run when the graph is batchable and their trailing
    /// dimensions agree, else one run each. A failed concatenated run is retried request by request
    /// so only the request at fault gets the error.
    /// </summary>
    public GraphOutcome[] RunBatch(IReadOnlyList<GraphRequest> requests)
    {
        if (requests.Count > 1 && Batchable && Concatenable(requests))
        {
            try
            {
                return RunConcatenated(requests);
            }
            catch (OnnxRuntimeException)
            {
                // Fall through: find the culprit by running each alone.
            }
        }
        var outcomes = new GraphOutcome[requests.Count];
        for (int i = 0; i < requests.Count; i++)
        {
            try
            {
                outcomes[i] = new GraphOutcome(Run(requests[i].Inputs, requests[i].Outputs), null);
            }
            catch (Exception e) when (e is OnnxRuntimeException or VisionInputException)
            {
                outcomes[i] = new GraphOutcome(null, e);
            }
        }
        return outcomes;
    }

    private static bool Concatenable(IReadOnlyList<GraphRequest> requests)
    {
        GraphRequest first = requests[0];
        foreach (GraphRequest r in requests)
        {
            if (r.Inputs.Count != first.Inputs.Count) return false;
            foreach ((string name, HostTensor t) in first.Inputs)
            {
                if (!r.Inputs.TryGetValue(name, out HostTensor? other) || other.Element != t.Element || !other.Shape.AsSpan(1).SequenceEqual(t.Shape.AsSpan(1))) return false;
            }
        }
        return true;
    }

    /// <summary>
    /// One run over all requests: their inputs stacked into rented arrays (<see cref="RentedTensors"/>)
    /// and each request's rows copied straight out of ONNX Runtime's output, so a batch allocates
    /// only what it hands back (each request's own outputs), never a batch-sized array.
    /// </summary>
    private GraphOutcome[] RunConcatenated(IReadOnlyList<GraphRequest> requests)
    {
        GraphRequest first = requests[0];
        var names = new List<string>(first.Inputs.Count);
        using var stacked = new RentedTensors();
        foreach ((string name, HostTensor t) in first.Inputs)
        {
            names.Add(name);
            switch (t.Element)
            {
                case ElementKind.Float32: Stack<float>(stacked, requests, name); break;
                case ElementKind.Int64: Stack<long>(stacked, requests, name); break;
                default: Stack<byte>(stacked, requests, name); break;
            }
        }
        // Every output any request wants; each request then gets only its own.
        string[] wanted = [.. Outputs.Select(o => o.Name).Where(n => requests.Any(r => r.Outputs is null || r.Outputs.Contains(n)))];
        using IDisposableReadOnlyCollection<OrtValue> results = _session.Run(_runOptions, names, stacked.Values, wanted);
        long total = 0;
        foreach (GraphRequest r in requests) total += r.Rows;
        var mine = new Dictionary<string, HostTensor>[requests.Count];
        for (int i = 0; i < mine.Length; i++) mine[i] = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        int k = 0;
        foreach (OrtValue result in results)
        {
            string name = wanted[k++];
            long[] shape = result.GetTensorTypeAndShape().Shape;
            if (shape.Length == 0 || shape[0] != total) throw new InvalidOperationException($"output '{name}' has {(shape.Length == 0 ? 0 : shape[0])} rows for a batch of {total}");
            long start = 0;
            for (int i = 0; i < requests.Count; i++)
            {
                long rows = requests[i].Rows;
                if (requests[i].Outputs is null || requests[i].Outputs!.Contains(name)) mine[i][name] = HostTensor.FromOrtRows(result, name, start, rows);
                start += rows;
            }
        }
        var outcomes = new GraphOutcome[requests.Count];
        for (int i = 0; i < outcomes.Length; i++) outcomes[i] = new GraphOutcome(mine[i], null);
        return outcomes;
    }

    private static void Stack<T>(RentedTensors stacked, IReadOnlyList<GraphRequest> requests, string name) where T : unmanaged
    {
        long rows = 0;
        foreach (GraphRequest r in requests) rows += r.Inputs[name].Shape[0];
        long[] shape = [.. requests[0].Inputs[name].Shape];
        shape[0] = rows;
        Span<T> into = stacked.Add<T>(shape);
        int at = 0;
        foreach (GraphRequest r in requests)
        {
            HostTensor t = r.Inputs[name];
            t.CopyTo(into.Slice(at, (int)t.Length));
            at += (int)t.Length;
        }
    }

    /// <summary>
    /// Runs prepared input values (rented ones, say) and hands the results to the caller while they
    /// are still in ONNX Runtime's memory, so it can read what it needs without a managed copy.
    /// </summary>
    internal IDisposableReadOnlyCollection<OrtValue> RunValues(IReadOnlyCollection<string> inputs, IReadOnlyList<OrtValue> values, IReadOnlyCollection<string> outputs) =>
        _session.Run(_runOptions, inputs, values, outputs);

    public void Dispose()
    {
        _runOptions.Dispose();
        _session.Dispose();
    }
}
