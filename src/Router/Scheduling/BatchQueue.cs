namespace Recsys.Router.Scheduling;

/// <summary>
/// One model's queue on the scheduler. Items wait here in earliest-deadline order; once MaxBatch
/// are queued or the oldest has waited MaxDelay, a free worker takes up to MaxBatch of them in
/// one call of the model. Several batches of one queue may run at once on different workers.
/// </summary>
public sealed class BatchQueue<TItem, TResult>
{
    private readonly ComputeScheduler _scheduler;
    private readonly Core _core;

    internal BatchQueue(ComputeScheduler scheduler, string model, WorkClass workClass, BatchLimits limits, Func<IReadOnlyList<TItem>, TResult[]> runBatch)
    {
        _scheduler = scheduler;
        _core = new Core(model, workClass, limits, runBatch)
        {
            Metrics = scheduler.Metrics.For(model, ComputeScheduler.ClassLabel(workClass)),
        };
    }

    public string Model => _core.Model;
    public WorkClass Class => _core.Class;
    public BatchLimits Limits => _core.Limits;

    /// <summary>Queues one item.</summary>
    /// <param name="deadline">Stopwatch timestamp by which the result is useless; long.MaxValue for none.</param>
    /// <returns>The item's result; faulted with <see cref="SchedulerRejectedException"/> when refused, expired or shut down.</returns>
    public Task<TResult> SubmitAsync(TItem item, long deadline, CancellationToken cancel = default)
    {
        var p = new Pending(item);
        _scheduler.Submit(p, _core, _core.Model, _core.Class, deadline, cancel);
        return p.Completion.Task;
    }

    private sealed class Pending(TItem item) : Waiting
    {
        public TItem Item { get; } = item;
        public TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override bool IsDone => Completion.Task.IsCompleted;
        public override void Refuse(Exception error) => Completion.TrySetException(error);
        public override void Cancel() => Completion.TrySetCanceled(Token);

        public bool Canceled { get; set; }
        public TResult? Result { get; set; }
        public Exception? Error { get; set; }

        public override void Publish()
        {
            if (Canceled) Cancel();
            else if (Error is not null) Completion.TrySetException(Error);
            else Completion.TrySetResult(Result!);
        }
    }

    private sealed class Core(string model, WorkClass workClass, BatchLimits limits, Func<IReadOnlyList<TItem>, TResult[]> runBatch)
        : QueuedBatches(model, workClass, limits, (long)(limits.MaxDelay.TotalSeconds * System.Diagnostics.Stopwatch.Frequency))
    {
        public override bool RunBatch(List<Waiting> batch)
        {
            // Items canceled after they were taken are left out; the rest run together.
            var live = new List<Pending>(batch.Count);
            foreach (Waiting w in batch)
            {
                var p = (Pending)w;
                if (p.Token.IsCancellationRequested) p.Canceled = true;
                else live.Add(p);
            }
            if (live.Count == 0) return true;
            var items = new TItem[live.Count];
            for (int i = 0; i < items.Length; i++) items[i] = live[i].Item;
            try
            {
                TResult[] results = runBatch(items);
                if (results is null || results.Length != live.Count)
                {
                    throw new InvalidOperationException($"model '{Model}' returned {results?.Length ?? 0} results for a batch of {live.Count}");
                }
                for (int i = 0; i < live.Count; i++) live[i].Result = results[i];
                return true;
            }
            catch (Exception e)
            {
                foreach (Pending p in live) p.Error = e;
                return false;
            }
        }
    }
}
