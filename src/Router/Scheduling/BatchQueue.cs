namespace Recsys.Router.Scheduling;

/// <summary>
/// One model's queue on the scheduler. Items wait here; while any wait, one ready unit stands in
/// the scheduler for the queue, and the worker that picks it takes up to MaxBatch items at once.
/// </summary>
public sealed class BatchQueue<TItem, TResult>
{
    private readonly ComputeScheduler _scheduler;
    private readonly Func<IReadOnlyList<TItem>, TResult[]> _runBatch;
    private readonly Lock _gate = new();
    private readonly List<Pending> _pending = [];
    private bool _scheduled;

    internal BatchQueue(ComputeScheduler scheduler, string model, WorkClass workClass, BatchLimits limits, Func<IReadOnlyList<TItem>, TResult[]> runBatch)
    {
        _scheduler = scheduler;
        Model = model;
        Class = workClass;
        Limits = limits;
        _runBatch = runBatch;
    }

    public string Model { get; }
    public WorkClass Class { get; }
    public BatchLimits Limits { get; }

    /// <param name="deadline">Stopwatch timestamp by which the result is useless.</param>
    public Task<TResult> SubmitAsync(TItem item, long deadline, CancellationToken cancel = default)
    {
        var p = new Pending(item, deadline, cancel);
        bool schedule;
        lock (_gate)
        {
            _pending.Add(p);
            schedule = !_scheduled;
            _scheduled = true;
        }
        if (schedule) _scheduler.Enqueue(new QueueUnit(this));
        return p.Completion.Task;
    }

    private long EarliestDeadline()
    {
        lock (_gate) return _pending.Count == 0 ? long.MaxValue : _pending.Min(p => p.Deadline);
    }

    private void RunOnce()
    {
        List<Pending> batch;
        lock (_gate)
        {
            _pending.Sort((a, b) => a.Deadline.CompareTo(b.Deadline));
            int take = Math.Min(Limits.MaxBatch, _pending.Count);
            batch = _pending.GetRange(0, take);
            _pending.RemoveRange(0, take);
        }
        var live = new List<Pending>(batch.Count);
        foreach (Pending p in batch)
        {
            if (p.Cancel.IsCancellationRequested) p.Completion.TrySetCanceled(p.Cancel);
            else live.Add(p);
        }
        if (live.Count > 0)
        {
            try
            {
                TResult[] results = _runBatch(live.Select(p => p.Item).ToList());
                if (results.Length != live.Count) throw new InvalidOperationException($"model '{Model}' returned {results.Length} results for a batch of {live.Count}");
                for (int i = 0; i < live.Count; i++) live[i].Completion.TrySetResult(results[i]);
            }
            catch (Exception e)
            {
                foreach (Pending p in live) p.Completion.TrySetException(e);
            }
        }
        bool again;
        lock (_gate)
        {
            again = _pending.Count > 0;
            _scheduled = again;
        }
        if (again) _scheduler.Enqueue(new QueueUnit(this));
    }

    private void AbandonAll()
    {
        List<Pending> all;
        lock (_gate)
        {
            all = [.. _pending];
            _pending.Clear();
            _scheduled = false;
        }
        foreach (Pending p in all) p.Completion.TrySetException(new SchedulerRejectedException(Model, "the server is shutting down", TimeSpan.FromSeconds(1)));
    }

    private sealed class Pending(TItem item, long deadline, CancellationToken cancel)
    {
        public TItem Item { get; } = item;
        public long Deadline { get; } = deadline;
        public CancellationToken Cancel { get; } = cancel;
        public TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class QueueUnit(BatchQueue<TItem, TResult> queue) : ComputeScheduler.IReadyUnit
    {
        public WorkClass Class => queue.Class;
        public long Deadline => queue.EarliestDeadline();
        public void Run() => queue.RunOnce();
        public void Abandon() => queue.AbandonAll();
    }
}
