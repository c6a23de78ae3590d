namespace Recsys.Router.Batching;

/// <summary>How a model's batcher merges concurrent requests.</summary>
public sealed record BatchingOptions
{
    /// <summary>Samples per engine pass; a single request larger than this runs alone.</summary>
    public int MaxBatch { get; init; } = 256;

    /// <summary>How long the first request of a batch may wait for company. Zero takes only what is already queued.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Requests waiting beyond this answer 429 at once instead of queueing into their deadline.</summary>
    public int QueueCapacity { get; init; } = 1024;

    /// <summary>Batches in the engine at once: one forms while the previous one waits on its shards.</summary>
    public int MaxConcurrentBatches { get; init; } = 2;
}
