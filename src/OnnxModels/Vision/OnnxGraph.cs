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

    private GraphOutcome[] RunConcatenated(IReadOnlyList<GraphRequest> requests)
    {
        var inputs = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (string name in requests[0].Inputs.Keys) inputs[name] = HostTensor.Concat([.. requests.Select(r => r.Inputs[name])]);
        // Every output any request wants; each request then gets only its own.
        string[] wanted = [.. Outputs.Select(o => o.Name).Where(n => requests.Any(r => r.Outputs is null || r.Outputs.Contains(n)))];
        IReadOnlyDictionary<string, HostTensor> all = Run(inputs, wanted);
        long total = requests.Sum(r => r.Rows);
        foreach ((string name, HostTensor t) in all)
        {
            if (t.Rank == 0 || t.Shape[0] != total) throw new InvalidOperationException($"output '{name}' has {(t.Rank == 0 ? 0 : t.Shape[0])} rows for a batch of {total}");
        }
        var outcomes = new GraphOutcome[requests.Count];
        long start = 0;
        for (int i = 0; i < requests.Count; i++)
        {
            long rows = requests[i].Rows;
            var mine = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            foreach (string name in requests[i].Outputs ?? wanted) mine[name] = all[name].Rows(start, rows);
            outcomes[i] = new GraphOutcome(mine, null);
            start += rows;
        }
        return outcomes;
    }

    public void Dispose()
    {
        _runOptions.Dispose();
        _session.Dispose();
    }
}
