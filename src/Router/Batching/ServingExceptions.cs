namespace Recsys.Router.Batching;

/// <summary>The model's queue is full: answered 429 with Retry-After.</summary>
public sealed class QueueFullException(string model, int capacity)
    : Exception($"model '{model}' has {capacity} requests queued; retry later")
{
    public string Model { get; } = model;
}
