using System.Diagnostics;

namespace Recsys.Router.Scheduling;

/// <summary>
/// Owns the front end's compute: a fixed set of worker threads (the thread budget, one per core
/// by default) runs every CPU-heavy unit of every model kind. ONNX Runtime sessions get one
/// intra-op thread each (see OrtSessions), so the budget is the whole of what runs.
/// This first version picks the most urgent class, then the earliest deadline.
/// </summary>
public sealed class ComputeScheduler : IDisposable
{
    private readonly Lock _gate = new();
    private readonly List<IReadyUnit> _ready = [];
    private readonly Thread[] _workers;
    private readonly SemaphoreSlim _signal = new(0);
    private volatile bool _stopping;

    public ComputeScheduler(int workers = 0)
    {
        Workers = workers > 0 ? workers : Environment.ProcessorCount;
        _workers = new Thread[Workers];
        for (int i = 0; i < Workers; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"recsys-compute-{i}" };
            _workers[i].Start();
        }
    }

    public int Workers { get; }

    /// <summary>Runs one unit of work on a compute worker.</summary>
    /// <param name="deadline">Stopwatch timestamp by which the result is useless.</param>
    public Task<T> RunAsync<T>(string model, WorkClass workClass, long deadline, Func<T> work, CancellationToken cancel = default)
    {
        var unit = new SingleUnit<T>(model, workClass, deadline, work, cancel);
        Enqueue(unit);
        return unit.Completion.Task;
    }

    /// <summary>A per-model queue whose items are run in batches of up to <paramref name="limits"/>.MaxBatch.</summary>
    public BatchQueue<TItem, TResult> CreateQueue<TItem, TResult>(string model, WorkClass workClass, BatchLimits limits, Func<IReadOnlyList<TItem>, TResult[]> runBatch) =>
        new(this, model, workClass, limits, runBatch);

    internal void Enqueue(IReadyUnit unit)
    {
        if (_stopping) throw new ObjectDisposedException(nameof(ComputeScheduler));
        lock (_gate) _ready.Add(unit);
        _signal.Release();
    }

    private void WorkerLoop()
    {
        while (true)
        {
            _signal.Wait();
            if (_stopping) return;
            IReadyUnit? next;
            lock (_gate)
            {
                next = PickLocked();
                if (next is not null) _ready.Remove(next);
            }
            next?.Run();
        }
    }

    private IReadyUnit? PickLocked()
    {
        IReadyUnit? best = null;
        foreach (IReadyUnit u in _ready)
        {
            if (best is null || u.Class < best.Class || (u.Class == best.Class && u.Deadline < best.Deadline)) best = u;
        }
        return best;
    }

    public void Dispose()
    {
        _stopping = true;
        _signal.Release(_workers.Length);
        foreach (Thread t in _workers) t.Join();
        lock (_gate)
        {
            foreach (IReadyUnit u in _ready) u.Abandon();
            _ready.Clear();
        }
        _signal.Dispose();
    }

    /// <summary>Something a worker can pick: its class and deadline order it.</summary>
    internal interface IReadyUnit
    {
        WorkClass Class { get; }
        long Deadline { get; }
        void Run();
        void Abandon();
    }

    private sealed class SingleUnit<T>(string model, WorkClass workClass, long deadline, Func<T> work, CancellationToken cancel) : IReadyUnit
    {
        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public WorkClass Class => workClass;
        public long Deadline => deadline;

        public void Run()
        {
            if (cancel.IsCancellationRequested)
            {
                Completion.TrySetCanceled(cancel);
                return;
            }
            try
            {
                Completion.TrySetResult(work());
            }
            catch (Exception e)
            {
                Completion.TrySetException(e);
            }
        }

        public void Abandon() => Completion.TrySetException(new SchedulerRejectedException(model, "the server is shutting down", TimeSpan.FromSeconds(1)));
    }

    /// <summary>Deadline helper: a Stopwatch timestamp this far from now.</summary>
    public static long DeadlineAfter(TimeSpan budget) => Stopwatch.GetTimestamp() + (long)(budget.TotalSeconds * Stopwatch.Frequency);
}
