using Recsys.Router.Metrics;

namespace Recsys.Router.Scheduling;

/// <summary>
/// Something queued on the scheduler: a RunAsync unit, a slot request or one item of a batch queue.
/// Its fields are set at submission under the scheduler's lock and read only under it.
/// </summary>
internal abstract class Waiting
{
    public string Model { get; set; } = "";
    public WorkClass Class { get; set; }

    /// <summary>Stopwatch timestamp past which the result is useless: the item is dropped, not run.</summary>
    public long Deadline { get; set; }

    /// <summary>Earliest-deadline-first key: min(Deadline, arrival + the class objective).</summary>
    public long Key { get; set; }

    public long Enqueued { get; set; }

    /// <summary>Arrival order: breaks ties between equal keys, so equal deadlines run first come, first served.</summary>
    public long Seq { get; set; }

    /// <summary>Items the unit carries, for the run-time estimate (a batch queue item is 1).</summary>
    public int Items { get; set; } = 1;

    public SchedulerModelMetrics Metrics { get; set; } = null!;
    public CancellationToken Token { get; set; }
    public CancellationTokenRegistration Registration { get; set; }

    /// <summary>Completed already: its caller canceled it.</summary>
    public abstract bool IsDone { get; }

    public abstract void Refuse(Exception error);

    public abstract void Cancel();

    /// <summary>
    /// Hands the outcome a worker stored to the caller. The scheduler records the run (metrics,
    /// estimate) first, so a caller that sees its result also sees it counted.
    /// </summary>
    public abstract void Publish();

    /// <summary>EDF order: smaller key first, then arrival.</summary>
    public bool Before(Waiting other) => Key < other.Key || (Key == other.Key && Seq < other.Seq);

    public static int Compare(Waiting a, Waiting b) => a.Key != b.Key ? a.Key.CompareTo(b.Key) : a.Seq.CompareTo(b.Seq);
}

/// <summary>A waiting item a worker runs on its own: a RunAsync unit or a slot grant.</summary>
internal abstract class SingleWork : Waiting
{
    /// <summary>Runs on a worker thread and stores the outcome for <see cref="Waiting.Publish"/>; false when the work threw.</summary>
    public abstract bool Execute();
}

/// <summary>The untyped side of a <see cref="BatchQueue{TItem, TResult}"/>: what the scheduler picks batches from.</summary>
internal abstract class QueuedBatches(string model, WorkClass workClass, BatchLimits limits, long maxDelayTicks)
{
    public string Model { get; } = model;
    public WorkClass Class { get; } = workClass;
    public BatchLimits Limits { get; } = limits;
    public long MaxDelayTicks { get; } = maxDelayTicks;

    /// <summary>Items waiting; guarded by the scheduler's lock.</summary>
    public List<Waiting> Pending { get; } = [];

    public SchedulerModelMetrics Metrics { get; set; } = null!;

    /// <summary>Runs one batch on a worker thread and stores every item's outcome; false when the model threw.</summary>
    public abstract bool RunBatch(List<Waiting> batch);
}
