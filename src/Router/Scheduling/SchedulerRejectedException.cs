namespace Recsys.Router.Scheduling;

/// <summary>The scheduler refused work it could not finish in time: answered 429/503 with Retry-After.</summary>
public sealed class SchedulerRejectedException(string model, string reason, TimeSpan retryAfter)
    : Exception($"model '{model}': {reason}")
{
    public string Model { get; } = model;
    public TimeSpan RetryAfter { get; } = retryAfter;
}
