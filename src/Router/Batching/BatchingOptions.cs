using Recsys.Router.Scheduling;

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

    /// <summary>
    /// The front end's compute scheduler: each batch's CPU work runs as a Ranking-class unit on it,
    /// so vision and translation work cannot crowd ranking off the cores. Null (tests of the batcher
    /// alone) computes without asking anyone. Set by the model registry, not by configuration.
    /// </summary>
    public ComputeScheduler? Scheduler { get; init; }

    /// <summary>
    /// False: the batcher holds a compute slot around the whole engine pass, shard lookups included.
    /// True: the engine takes slots around its dense steps itself (<see cref="ModelBatcher.AcquireComputeAsync"/>),
    /// so the wait for shards holds no worker.
    /// </summary>
    public bool EngineTakesSlots { get; init; }
}
