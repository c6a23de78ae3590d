namespace Recsys.Router.Scheduling;

/// <summary>How a model's queue forms batches: at most MaxBatch items, the first waiting at most MaxDelay for company.</summary>
public sealed record BatchLimits(int MaxBatch, TimeSpan MaxDelay)
{
    public static BatchLimits Single { get; } = new(1, TimeSpan.Zero);

    internal void Validate(string model)
    {
        if (MaxBatch < 1) throw new ArgumentException($"model '{model}': MaxBatch must be >= 1 (got {MaxBatch})");
        if (MaxDelay < TimeSpan.Zero) throw new ArgumentException($"model '{model}': MaxDelay must be >= 0 (got {MaxDelay})");
    }
}
