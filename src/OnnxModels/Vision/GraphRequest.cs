namespace Recsys.OnnxModels.Vision;

/// <summary>One request's graph inputs by name, and the outputs it wants (null: all of them).</summary>
public sealed record GraphRequest(IReadOnlyDictionary<string, HostTensor> Inputs, IReadOnlyCollection<string>? Outputs = null)
{
    /// <summary>Rows along dimension 0 (the batch) of the first input.</summary>
    public long Rows => Inputs.Values.First().Rank == 0 ? 1 : Inputs.Values.First().Shape[0];
}

/// <summary>What one request got back from a batched run: its outputs, or the error that was its own.</summary>
public sealed record GraphOutcome(IReadOnlyDictionary<string, HostTensor>? Outputs, Exception? Error)
{
    public IReadOnlyDictionary<string, HostTensor> Get() => Outputs ?? throw Error!;
}
