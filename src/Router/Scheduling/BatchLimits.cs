namespace Recsys.Router.Scheduling;

/// <summary>How a model's queue forms batches: at most MaxBatch items, the first waiting at most MaxDelay for company.</summary>
public sealed record BatchLimits(int MaxBatch, TimeSpan MaxDelay)
{
    public static BatchLimits Single { get; } = new(1, TimeSpan.Zero);
}
