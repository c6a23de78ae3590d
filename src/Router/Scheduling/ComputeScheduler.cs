using System.Diagnostics;
using Recsys.Router.Metrics;

namespace Recsys.Router.Scheduling;

/// <summary>
/// Owns the front end's compute: a budget of workers (one per core by default) runs every
/// CPU-heavy unit of every model kind. ONNX Runtime sessions get one intra-op thread each (see
/// OrtSessions) and ranking holds a <see cref="ComputeSlot"/> around its dense steps, so the budget
/// is the whole of what computes.
/// </summary>
/// <remarks>
/// When a worker frees up, the next unit is chosen in three steps:
/// <list type="number">
/// <item>Reserve: while a more urgent class has work queued or running, or saw work within
/// <see cref="SchedulerOptions.ReserveWindow"/>, the less urgent classes together leave
/// <see cref="SchedulerOptions.ReservedWorkers"/> (one) workers free for it. Units cannot be preempted; this bounds a ranking request's wait by other ranking
/// work, never by a vision batch.</item>
/// <item>Share: a class whose decayed busy time is below its weighted share of the contending
/// classes goes first, so continuous ranking cannot starve best effort (nor the reverse).</item>
/// <item>Otherwise the most urgent class; within a class the earliest deadline (min of the item's
/// deadline and arrival + class objective), ties first come first served.</item>
/// </list>
/// A batch queue is eligible once it holds MaxBatch items or its oldest item waited MaxDelay
/// (strict, as Triton's max queue delay: an idle worker does not cut the wait short; MaxDelay 0
/// runs whatever is queued at once). While a more urgent class is active, a less urgent batch is
/// cut to what its estimate says runs within <see cref="SchedulerOptions.YieldUnitTime"/>. Items
/// whose deadline passed are dropped, never run; admission refuses at submission what the queue
/// ahead says cannot meet its deadline.
/// <para>
/// Threads: each distinct <see cref="ClassPolicy.Nice"/> value gets its own set of Workers threads
/// at that nice value, and a unit runs on a thread of its class's set; the budget (units at once)
/// stays Workers. The scheduler decides what runs, the OS decides which thread gets a core: a
/// niced vision thread gives its core up as soon as ranking's thread wants it. Each thread parks
/// on its own semaphore, so a submission wakes exactly a thread that can run what comes next.
/// </para>
/// </remarks>
public sealed class ComputeScheduler : IDisposable
{
    private const int ClassCount = 3;
    private readonly object _gate = new();
    private readonly List<SingleWork>[] _singles = [[], [], []];
    private readonly List<QueuedBatches>[] _queues = [[], [], []];
    private readonly int[] _busy = new int[ClassCount];
    private readonly long[] _lastArrival = [long.MinValue / 2, long.MinValue / 2, long.MinValue / 2];
    private readonly double[] _usage = new double[ClassCount];
    private readonly long[] _objectiveTicks = new long[ClassCount];
    private readonly double[] _weight = new double[ClassCount];
    private readonly string[] _className = new string[ClassCount];
    private readonly int[] _nice = new int[ClassCount];
    private readonly List<Dispatch> _running = [];
    // Scratch of ChooseLocked, used under the lock only.
    private readonly SingleWork?[] _bestSingle = new SingleWork?[ClassCount];
    private readonly QueuedBatches?[] _bestQueue = new QueuedBatches?[ClassCount];
    private readonly RunTimeEstimates _estimates;
    private readonly Worker[] _workers;
    private readonly int[] _groupOf = new int[ClassCount];
    // Parked threads per thread set (one set per distinct nice value); guarded by the lock.
    private readonly List<Worker>[] _idle;
    private readonly long _reserveTicks;
    private readonly long _yieldTicks;
    private readonly int _reserved;
    private readonly long _probeTicks;
    private readonly double _shareTicks;
    private long _usageUpdated = Stopwatch.GetTimestamp();
    private long _seq;
    private bool _stopping;

    public ComputeScheduler(int workers = 0, SchedulerOptions? options = null)
    {
        Options = options ?? new SchedulerOptions();
        Options.Validate();
        Workers = workers > 0 ? workers : Environment.ProcessorCount;
        Metrics = new SchedulerMetrics(Workers);
        _estimates = new RunTimeEstimates(Options.EstimateSmoothing);
        _reserveTicks = Ticks(Options.ReserveWindow);
        _reserved = Math.Min(Options.ReservedWorkers, Workers - 1);
        _probeTicks = Ticks(Options.ProbeInterval);
        _shareTicks = Ticks(Options.ShareWindow);
        _yieldTicks = Ticks(Options.YieldUnitTime);
        var nices = new List<int>();
        foreach (WorkClass c in Enum.GetValues<WorkClass>())
        {
            _objectiveTicks[(int)c] = Ticks(Options.For(c).Objective);
            _weight[(int)c] = Options.For(c).Weight;
            _className[(int)c] = ClassLabel(c);
            int nice = _nice[(int)c] = Options.For(c).Nice;
            if (!nices.Contains(nice)) nices.Add(nice);
            _groupOf[(int)c] = nices.IndexOf(nice);
        }
        _idle = new List<Worker>[nices.Count];
        _workers = new Worker[nices.Count * Workers];
        for (int g = 0; g < nices.Count; g++)
        {
            _idle[g] = [];
            for (int i = 0; i < Workers; i++)
            {
                var w = new Worker(g, nices[g]);
                w.Thread = new Thread(() => WorkerLoop(w)) { IsBackground = true, Name = $"recsys-compute-n{nices[g]}-{i}" };
                _workers[g * Workers + i] = w;
            }
        }
        foreach (Worker w in _workers) w.Thread.Start();
    }

    /// <summary>
    /// Units that run at once: worker threads plus held slots never exceed it, except that with
    /// <see cref="SchedulerOptions.LendReserve"/> a class may run up to ReservedWorkers units over it
    /// while units of more niced classes run (the OS preempts those for it).
    /// </summary>
    public int Workers { get; }

    public SchedulerOptions Options { get; }

    public SchedulerMetrics Metrics { get; }

    /// <summary>Runs one unit of work on a compute worker.</summary>
    /// <param name="deadline">Stopwatch timestamp by which the result is useless; long.MaxValue for none.</param>
    /// <returns>The work's result; faulted with <see cref="SchedulerRejectedException"/> when refused, expired or shut down.</returns>
    public Task<T> RunAsync<T>(string model, WorkClass workClass, long deadline, Func<T> work, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        var unit = new Unit<T>(work);
        Submit(unit, null, model, workClass, deadline, cancel);
        return unit.Completion.Task;
    }

    /// <summary>
    /// Waits for a worker's share of the compute, for async code that computes on its own thread
    /// between awaits (ranking). Dispose the slot when the CPU part is done.
    /// </summary>
    /// <param name="items">Samples the holder computes, for the run-time estimate and the batch-size histogram.</param>
    public Task<ComputeSlot> AcquireAsync(string model, WorkClass workClass, long deadline, int items = 1, CancellationToken cancel = default)
    {
        var request = new SlotRequest { Items = Math.Max(1, items) };
        Submit(request, null, model, workClass, deadline, cancel);
        return request.Completion.Task;
    }

    /// <summary>A per-model queue whose items are run in batches of up to <paramref name="limits"/>.MaxBatch.</summary>
    public BatchQueue<TItem, TResult> CreateQueue<TItem, TResult>(string model, WorkClass workClass, BatchLimits limits, Func<IReadOnlyList<TItem>, TResult[]> runBatch)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(runBatch);
        limits.Validate(model);
        return new(this, model, workClass, limits, runBatch);
    }

    /// <summary>The class's default limits: <paramref name="maxBatch"/> items, the class's default MaxDelay.</summary>
    public BatchLimits DefaultLimits(WorkClass workClass, int maxBatch) => new(maxBatch, Options.For(workClass).DefaultMaxDelay);

    /// <summary>What the scheduler expects one unit of <paramref name="items"/> of this model to take (zero before its first run).</summary>
    public TimeSpan EstimatedRunTime(string model, int items)
    {
        lock (_gate) return TimeSpan.FromSeconds(_estimates.Estimate(model, items) / (double)Stopwatch.Frequency);
    }

    internal void Submit(Waiting w, QueuedBatches? queue, string model, WorkClass workClass, long deadline, CancellationToken cancel)
    {
        if ((uint)workClass >= ClassCount) throw new ArgumentOutOfRangeException(nameof(workClass), workClass, "unknown work class");
        int c = (int)workClass;
        Dispatch? inline = null;
        lock (_gate)
        {
            long now = Stopwatch.GetTimestamp();
            w.Model = model;
            w.Class = workClass;
            w.Deadline = deadline;
            w.Key = Math.Min(deadline, now + _objectiveTicks[c]);
            w.Enqueued = now;
            w.Seq = _seq++;
            w.Token = cancel;
            w.Metrics = queue?.Metrics ?? Metrics.For(model, _className[c]);
            if (_stopping)
            {
                w.Metrics.Refuse(Refusal.Shutdown);
                w.Refuse(ShuttingDown(model));
                return;
            }
            _lastArrival[c] = now;
            if (Options.Admission && deadline != long.MaxValue && !Admits(w, queue, now, out long finish))
            {
                w.Metrics.Refuse(Refusal.Admission);
                var retry = TimeSpan.FromSeconds(Math.Max(0, finish - now) / (double)Stopwatch.Frequency);
                w.Refuse(new SchedulerRejectedException(model,
                    $"refused: expected to finish in {retry.TotalMilliseconds:0.#} ms, {Math.Max(0, deadline - now) * 1000.0 / Stopwatch.Frequency:0.#} ms before its deadline; retry later",
                    retry));
                return;
            }
            if (queue is null) _singles[c].Add((SingleWork)w);
            else
            {
                if (queue.Pending.Count == 0) _queues[c].Add(queue);
                queue.Pending.Add(w);
            }
            w.Metrics.Queued(1);
            inline = DispatchOnSubmitLocked(w, queue, now);
        }
        if (inline is not null)
        {
            if (w is SlotRequest slot) slot.Completion.TrySetResult(new ComputeSlot(this, inline));
            else Execute(inline, selfGroup: -1);
            return;
        }
        if (cancel.CanBeCanceled) w.Registration = cancel.UnsafeRegister(static s => ((Waiting)s!).Cancel(), w);
    }

    /// <summary>
    /// What a submission sets going. When the scheduler would pick the submitted item itself at
    /// once, it is taken for the submitting thread: a slot is granted there (ranking computes on its
    /// own thread anyway), and a lone batch-queue item runs there when <see cref="SchedulerOptions.InlineWhenIdle"/>
    /// and its class may run un-niced. Both save a wake-up of a worker and of the caller. Otherwise
    /// the thread set that runs what comes next is woken.
    /// </summary>
    private Dispatch? DispatchOnSubmitLocked(Waiting w, QueuedBatches? queue, long now)
    {
        if (!ChooseLocked(now, out Choice choice, out long wakeAt))
        {
            EnsureTimerLocked(wakeAt);
            return null;
        }
        if (choice.Single is SlotRequest && choice.Single == w) return TakeLocked(choice, now);
        if (queue is not null && choice.Queue == queue && queue.Pending.Count == 1 && Options.InlineWhenIdle)
        {
            int c = (int)w.Class;
            if (Options.For(w.Class).Nice == 0 || ActiveAbove(c, now, out _) < 0) return TakeLocked(choice, now);
        }
        WakeLocked(_groupOf[choice.Class]);
        return null;
    }

    /// <summary>
    /// Predicts when the item would finish: the estimated work queued ahead of it in EDF order
    /// (more urgent classes, earlier keys of its own class, the rest of the running units) spread
    /// over the workers its class may use, then its own batch's run.
    /// </summary>
    private bool Admits(Waiting w, QueuedBatches? queue, long now, out long finish)
    {
        finish = now;
        int c = (int)w.Class;
        long? lastRun = _estimates.LastRun(w.Model);
        if (lastRun is null) return true;
        if (now - lastRun.Value > _probeTicks && !HasWork(w.Model)) return true;

        double ahead = 0;
        long ownRun;
        long start = now;
        foreach (Dispatch r in _running) ahead += Math.Max(0, r.Estimate - (now - r.Start));
        for (int k = 0; k <= c; k++)
        {
            foreach (SingleWork s in _singles[k])
            {
                if (!s.IsDone && (k < c || !w.Before(s))) ahead += _estimates.Estimate(s.Model, s.Items);
            }
            foreach (QueuedBatches q in _queues[k])
            {
                if (q == queue) continue;
                int n = 0;
                foreach (Waiting p in q.Pending) if (!p.IsDone && (k < c || !w.Before(p))) n++;
                ahead += BatchesWork(q, n);
            }
        }
        if (queue is null) ownRun = _estimates.Estimate(w.Model, w.Items);
        else
        {
            int before = 0;
            long oldest = now;
            foreach (Waiting p in queue.Pending)
            {
                if (p.IsDone) continue;
                if (!w.Before(p)) before++;
                oldest = Math.Min(oldest, p.Enqueued);
            }
            int fullAhead = before / queue.Limits.MaxBatch;
            int inBatch = before % queue.Limits.MaxBatch + 1;
            ahead += fullAhead * (double)_estimates.Estimate(queue.Model, queue.Limits.MaxBatch);
            ownRun = _estimates.Estimate(queue.Model, inBatch);
            // A batch that will not fill waits out the delay of its oldest item.
            if (inBatch < queue.Limits.MaxBatch) start = Math.Max(start, (fullAhead == 0 ? oldest : now) + queue.MaxDelayTicks);
        }
        int h = ReservedAbove(c, now, out _);
        int capacity = Workers - (h >= 0 && !Lends(h, c) ? _reserved : 0);
        start = Math.Max(start, now + (long)(ahead / Math.Max(1, capacity)));
        finish = start + ownRun;
        return finish <= w.Deadline;
    }

    private double BatchesWork(QueuedBatches q, int n)
    {
        if (n == 0) return 0;
        int max = q.Limits.MaxBatch;
        return n / max * (double)_estimates.Estimate(q.Model, max) + (n % max == 0 ? 0 : _estimates.Estimate(q.Model, n % max));
    }

    private bool HasWork(string model)
    {
        foreach (Dispatch r in _running) if (r.Model == model) return true;
        for (int k = 0; k < ClassCount; k++)
        {
            foreach (SingleWork s in _singles[k]) if (s.Model == model) return true;
            foreach (QueuedBatches q in _queues[k]) if (q.Model == model) return true;
        }
        return false;
    }

    /// <summary>
    /// The most urgent class above <paramref name="c"/> that is active (queued, running, or arrived
    /// within the reserve window) when a worker is reserved for it, or -1. With a single worker nothing is reserved.
    /// </summary>
    private int ReservedAbove(int c, long now, out long windowEnds)
    {
        windowEnds = long.MaxValue;
        return _reserved == 0 ? -1 : ActiveAbove(c, now, out windowEnds);
    }

    /// <summary>The most urgent class above <paramref name="c"/> that is queued, running, or arrived within the reserve window; or -1.</summary>
    private int ActiveAbove(int c, long now, out long windowEnds)
    {
        windowEnds = long.MaxValue;
        for (int h = 0; h < c; h++)
        {
            if (_busy[h] > 0 || _singles[h].Count > 0 || _queues[h].Count > 0) return h;
            if (now - _lastArrival[h] < _reserveTicks)
            {
                windowEnds = _lastArrival[h] + _reserveTicks;
                return h;
            }
        }
        return -1;
    }

    private void WorkerLoop(Worker me)
    {
        if (me.Nice != 0) me.Niced = ThreadNice.TrySet(me.Nice);
        while (true)
        {
            Dispatch? next = null;
            int timeout = Timeout.Infinite;
            lock (_gate)
            {
                if (_stopping) return;
                // Back from a timeout (or a wake that raced one): no longer parked.
                _idle[me.Group].Remove(me);
                long now = Stopwatch.GetTimestamp();
                if (ChooseLocked(now, out Choice choice, out long wakeAt))
                {
                    int g = _groupOf[choice.Class];
                    if (g == me.Group)
                    {
                        next = TakeLocked(choice, now);
                        // More may be runnable on another worker (a burst, or a second class).
                        NotifyLocked(now, selfGroup: -1);
                    }
                    else WakeLocked(g);
                }
                if (next is null)
                {
                    me.ParkedUntil = wakeAt;
                    _idle[me.Group].Add(me);
                    if (wakeAt != long.MaxValue) timeout = (int)Math.Clamp((wakeAt - now) * 1000 / Stopwatch.Frequency + 1, 1, int.MaxValue);
                }
            }
            if (next is null)
            {
                // SemaphoreSlim spins briefly before it blocks: a unit submitted right after this
                // worker finished one is taken without a futex wake-up.
                me.Signal.Wait(timeout);
                continue;
            }
            Execute(next, me.Group);
        }
    }

    /// <summary>Wakes one parked thread of thread set <paramref name="group"/>, if one is parked (if none, one of its threads is awake and will choose).</summary>
    private void WakeLocked(int group)
    {
        List<Worker> idle = _idle[group];
        if (idle.Count == 0) return;
        Worker w = idle[^1];
        idle.RemoveAt(idle.Count - 1);
        w.Signal.Release();
    }

    /// <summary>Makes sure some parked thread wakes by <paramref name="wakeAt"/> (a batch's delay ends, a reserve window closes).</summary>
    private void EnsureTimerLocked(long wakeAt)
    {
        if (wakeAt == long.MaxValue) return;
        int any = -1;
        for (int g = 0; g < _idle.Length; g++)
        {
            foreach (Worker w in _idle[g]) if (w.ParkedUntil <= wakeAt) return;
            if (any < 0 && _idle[g].Count > 0) any = g;
        }
        // The woken thread recomputes the time and parks with it.
        if (any >= 0) WakeLocked(any);
    }

    /// <summary>
    /// After a change, wakes the thread set that runs what the scheduler would pick next.
    /// <paramref name="selfGroup"/>: the calling worker's set, which chooses again by itself; -1 for any other thread.
    /// </summary>
    private void NotifyLocked(long now, int selfGroup)
    {
        if (!ChooseLocked(now, out Choice choice, out long wakeAt))
        {
            if (selfGroup < 0) EnsureTimerLocked(wakeAt);
            return;
        }
        int g = _groupOf[choice.Class];
        if (g != selfGroup) WakeLocked(g);
    }

    private void Execute(Dispatch d, int selfGroup)
    {
        if (d.Single is SlotRequest slot)
        {
            // The holder computes on its own thread; this worker goes back to picking, and the
            // capacity stays taken until the slot is disposed.
            if (!slot.Completion.TrySetResult(new ComputeSlot(this, d))) Finish(d, failed: false, ran: false, selfGroup);
            return;
        }
        bool ok;
        try
        {
            ok = d.Single is { } single ? single.Execute() : d.Queue!.RunBatch(d.Batch!);
        }
        catch (Exception e)
        {
            // Execute and RunBatch store their own failures; this is only a backstop.
            ok = false;
            if (d.Single is { } s) s.Refuse(e);
            else foreach (Waiting p in d.Batch!) p.Refuse(e);
        }
        Finish(d, failed: !ok, selfGroup: selfGroup);
        if (d.Single is { } one) one.Publish();
        else foreach (Waiting p in d.Batch!) p.Publish();
    }

    /// <summary>A unit or slot gave its worker back.</summary>
    /// <param name="ran">False for a slot its requester canceled as it was granted: nothing ran, nothing to learn from.</param>
    /// <param name="selfGroup">Thread set of the worker that finished (it chooses the next unit itself), or -1.</param>
    internal void Finish(Dispatch d, bool failed, bool ran = true, int selfGroup = -1)
    {
        long now = Stopwatch.GetTimestamp();
        long ticks = now - d.Start;
        lock (_gate)
        {
            int c = (int)d.Class;
            _busy[c]--;
            _running.Remove(d);
            DecayUsage(now);
            _usage[c] += ticks;
            if (ran) _estimates.Record(d.Model, d.Items, ticks, now);
            NotifyLocked(now, selfGroup);
        }
        if (!ran) return;
        var elapsed = TimeSpan.FromSeconds(ticks / (double)Stopwatch.Frequency);
        d.Metrics.Ran(d.Items, elapsed, failed);
        Metrics.AddBusy(_className[(int)d.Class], elapsed);
    }

    /// <summary>
    /// What a free worker would run now, without taking it; false when nothing may run, with
    /// <paramref name="wakeAt"/> the time something becomes eligible (long.MaxValue for none).
    /// </summary>
    private bool ChooseLocked(long now, out Choice choice, out long wakeAt)
    {
        choice = default;
        wakeAt = long.MaxValue;
        DropDeadLocked(now);
        int busy = _busy[0] + _busy[1] + _busy[2];
        if (busy >= Workers + (Options.LendReserve ? _reserved : 0)) return false;

        Span<bool> allowed = stackalloc bool[ClassCount];
        Span<bool> contending = stackalloc bool[ClassCount];
        Span<int> takes = stackalloc int[ClassCount];
        SingleWork?[] bestSingle = _bestSingle;
        QueuedBatches?[] bestQueue = _bestQueue;
        Array.Clear(bestSingle);
        Array.Clear(bestQueue);
        bool any = false;
        for (int c = 0; c < ClassCount; c++)
        {
            Waiting? best = null;
            foreach (SingleWork s in _singles[c])
            {
                if (best is null || s.Before(best))
                {
                    best = s;
                    bestSingle[c] = s;
                }
            }
            foreach (QueuedBatches q in _queues[c])
            {
                Waiting first = q.Pending[0];
                foreach (Waiting p in q.Pending) if (p.Before(first)) first = p;
                long oldest = long.MaxValue;
                foreach (Waiting p in q.Pending) oldest = Math.Min(oldest, p.Enqueued);
                int cap = BatchCapLocked(q, c, now);
                if (q.Pending.Count < cap && now - oldest < q.MaxDelayTicks)
                {
                    wakeAt = Math.Min(wakeAt, oldest + q.MaxDelayTicks);
                    continue;
                }
                if (best is null || first.Before(best))
                {
                    best = first;
                    bestQueue[c] = q;
                    bestSingle[c] = null;
                    takes[c] = Math.Min(cap, q.Pending.Count);
                }
            }
            contending[c] = _busy[c] > 0 || _singles[c].Count > 0 || _queues[c].Count > 0;
            if (best is null) continue;
            if (!HasRoom(c, busy)) continue;
            allowed[c] = Allowed(c, now, out long windowEnds);
            if (!allowed[c]) wakeAt = Math.Min(wakeAt, windowEnds);
            any |= allowed[c];
        }
        if (!any) return false;

        int cls = ChooseClass(allowed, contending, now);
        choice = bestSingle[cls] is { } single ? new Choice(cls, single, null, 1) : new Choice(cls, null, bestQueue[cls], takes[cls]);
        return true;
    }

    /// <summary>
    /// Most items of one batch of <paramref name="q"/>: MaxBatch, or while a more urgent class is
    /// active and does not lend it its reserve (so it may have to wait for this unit to end), the
    /// items expected to run within YieldUnitTime, unless that costs more than
    /// <see cref="MaxCutCostRise"/> times the per-item run time of a full batch.
    /// </summary>
    private int BatchCapLocked(QueuedBatches q, int c, long now)
    {
        int max = q.Limits.MaxBatch;
        if (_yieldTicks == 0 || max == 1) return max;
        int h = ActiveAbove(c, now, out _);
        if (h < 0 || (Lends(h, c) && _reserved > 0)) return max;
        return _estimates.ItemsWithin(q.Model, _yieldTicks, max, MaxCutCostRise);
    }

    /// <summary>
    /// A batch is cut for a more urgent class only while its items stay within this factor of a
    /// full batch's cost each: the isolation bench's vision stand-in runs 1 item in ~4 ms and 32 in
    /// ~10 ms, and cutting it to the 4 ms yield time took its throughput from 68-91 % to 13-23 % of solo.
    /// </summary>
    private const double MaxCutCostRise = 1.25;

    /// <summary>Takes what <see cref="ChooseLocked"/> chose (under the same hold of the lock).</summary>
    private Dispatch TakeLocked(Choice choice, long now)
    {
        if (choice.Single is { } single) return TakeSingleLocked(single, now);
        int cls = choice.Class;
        var d = new Dispatch { Class = (WorkClass)cls, Start = now };
        QueuedBatches queue = choice.Queue!;
        queue.Pending.Sort(Waiting.Compare);
        int take = choice.Take;
        d.Batch = queue.Pending.GetRange(0, take);
        queue.Pending.RemoveRange(0, take);
        if (queue.Pending.Count == 0) _queues[cls].Remove(queue);
        d.Queue = queue;
        d.Model = queue.Model;
        d.Items = take;
        d.Metrics = queue.Metrics;
        queue.Metrics.Queued(-take);
        foreach (Waiting p in d.Batch)
        {
            p.Registration.Unregister();
            queue.Metrics.Wait.Observe((now - p.Enqueued) / (double)Stopwatch.Frequency);
        }
        return StartLocked(d);
    }

    private Dispatch TakeSingleLocked(SingleWork single, long now)
    {
        _singles[(int)single.Class].Remove(single);
        single.Registration.Unregister();
        single.Metrics.Queued(-1);
        single.Metrics.Wait.Observe((now - single.Enqueued) / (double)Stopwatch.Frequency);
        return StartLocked(new Dispatch { Class = single.Class, Start = now, Single = single, Model = single.Model, Items = single.Items, Metrics = single.Metrics });
    }

    private Dispatch StartLocked(Dispatch d)
    {
        d.Estimate = _estimates.Estimate(d.Model, d.Items);
        _busy[(int)d.Class]++;
        _running.Add(d);
        return d;
    }

    /// <summary>
    /// Whether the budget has room for one more unit of class <paramref name="c"/>: the units it
    /// cannot preempt through the OS (its own nice value or lower) fill fewer than Workers, and in
    /// all at most Workers run, or Workers + ReservedWorkers when the reserve is lent.
    /// </summary>
    private bool HasRoom(int c, int busy)
    {
        int hard = 0;
        for (int k = 0; k < ClassCount; k++) if (_nice[k] <= _nice[c]) hard += _busy[k];
        return hard < Workers && (busy < Workers || (Options.LendReserve && busy < Workers + _reserved));
    }

    /// <summary>Whether urgent class <paramref name="h"/> lends its reserve to class <paramref name="c"/>: c's threads are niced above h's.</summary>
    private bool Lends(int h, int c) => Options.LendReserve && _nice[c] > _nice[h];

    /// <summary>Whether the reserve lets class <paramref name="c"/> take one more worker now; if not, when the window that blocks it ends.</summary>
    private bool Allowed(int c, long now, out long windowEnds)
    {
        int h = ReservedAbove(c, now, out windowEnds);
        if (h < 0 || Lends(h, c)) return true;
        int lower = 0;
        for (int k = h + 1; k < ClassCount; k++) lower += _busy[k];
        return lower + 1 <= Workers - _reserved;
    }

    /// <summary>
    /// A class behind its weighted share of the contending classes' busy time goes first (the most
    /// urgent such class); otherwise the most urgent class. Busy time decays over the share window
    /// and counts running units up to now, so a long batch in flight counts while it runs.
    /// </summary>
    private int ChooseClass(ReadOnlySpan<bool> allowed, ReadOnlySpan<bool> contending, long now)
    {
        DecayUsage(now);
        Span<double> used = stackalloc double[ClassCount];
        for (int c = 0; c < ClassCount; c++) used[c] = _usage[c];
        foreach (Dispatch r in _running) used[(int)r.Class] += now - r.Start;
        double total = 0, weights = 0;
        for (int c = 0; c < ClassCount; c++)
        {
            if (!contending[c]) continue;
            total += used[c];
            weights += _weight[c];
        }
        int first = -1;
        for (int c = 0; c < ClassCount; c++)
        {
            if (!allowed[c]) continue;
            if (first < 0) first = c;
            if (total > 0 && used[c] / total < _weight[c] / weights) return c;
        }
        return first;
    }

    private void DecayUsage(long now)
    {
        long dt = now - _usageUpdated;
        if (dt <= 0) return;
        double f = Math.Exp(-dt / _shareTicks);
        for (int c = 0; c < ClassCount; c++) _usage[c] *= f;
        _usageUpdated = now;
    }

    /// <summary>Drops what its caller canceled and refuses what expired while queued.</summary>
    private void DropDeadLocked(long now)
    {
        for (int c = 0; c < ClassCount; c++)
        {
            List<SingleWork> singles = _singles[c];
            for (int i = singles.Count - 1; i >= 0; i--)
            {
                if (Drop(singles[i], now)) singles.RemoveAt(i);
            }
            List<QueuedBatches> queues = _queues[c];
            for (int j = queues.Count - 1; j >= 0; j--)
            {
                List<Waiting> pending = queues[j].Pending;
                for (int i = pending.Count - 1; i >= 0; i--)
                {
                    if (Drop(pending[i], now)) pending.RemoveAt(i);
                }
                if (pending.Count == 0) queues.RemoveAt(j);
            }
        }
    }

    private static bool Drop(Waiting w, long now)
    {
        if (w.IsDone)
        {
            w.Metrics.Queued(-1);
            return true;
        }
        if (now < w.Deadline) return false;
        w.Registration.Unregister();
        w.Metrics.Queued(-1);
        w.Metrics.Refuse(Refusal.Expired);
        w.Refuse(new SchedulerRejectedException(w.Model, "its deadline passed while it waited; it was dropped, not run", TimeSpan.FromSeconds(1)));
        return true;
    }

    /// <summary>Refuses everything still queued, then waits for the running units to end.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
            for (int c = 0; c < ClassCount; c++)
            {
                foreach (SingleWork s in _singles[c]) Abandon(s);
                foreach (QueuedBatches q in _queues[c])
                {
                    foreach (Waiting p in q.Pending) Abandon(p);
                    q.Pending.Clear();
                }
                _singles[c].Clear();
                _queues[c].Clear();
            }
        }
        foreach (Worker w in _workers) w.Signal.Release();
        foreach (Worker w in _workers)
        {
            if (w.Thread != Thread.CurrentThread) w.Thread.Join();
        }
    }

    private static void Abandon(Waiting w)
    {
        w.Registration.Unregister();
        w.Metrics.Queued(-1);
        if (w.IsDone) return;
        w.Metrics.Refuse(Refusal.Shutdown);
        w.Refuse(ShuttingDown(w.Model));
    }

    private static SchedulerRejectedException ShuttingDown(string model) => new(model, "the server is shutting down", TimeSpan.FromSeconds(1));

    private static long Ticks(TimeSpan t) => (long)(t.TotalSeconds * Stopwatch.Frequency);

    internal static string ClassLabel(WorkClass c) => c switch
    {
        WorkClass.Ranking => "ranking",
        WorkClass.Interactive => "interactive",
        _ => "best_effort",
    };

    /// <summary>Deadline helper: a Stopwatch timestamp this far from now.</summary>
    public static long DeadlineAfter(TimeSpan budget) => Stopwatch.GetTimestamp() + (long)(budget.TotalSeconds * Stopwatch.Frequency);

    /// <summary>What <see cref="ChooseLocked"/> would run: a single unit, or the first <paramref name="Take"/> items of a queue.</summary>
    private readonly record struct Choice(int Class, SingleWork? Single, QueuedBatches? Queue, int Take);

    /// <summary>A compute thread of one thread set: its nice value and its own parking semaphore.</summary>
    private sealed class Worker(int group, int nice)
    {
        public int Group { get; } = group;
        public int Nice { get; } = nice;
        public SemaphoreSlim Signal { get; } = new(0);
        public Thread Thread { get; set; } = null!;

        /// <summary>When the parked thread wakes by itself (long.MaxValue: only when signaled).</summary>
        public long ParkedUntil { get; set; } = long.MaxValue;

        /// <summary>Whether the kernel took the nice value.</summary>
        public bool Niced { get; set; }
    }

    /// <summary>One unit handed to a worker (or a slot holder): what it is, and when it started.</summary>
    internal sealed class Dispatch
    {
        public WorkClass Class { get; init; }
        public long Start { get; init; }
        public string Model { get; set; } = "";
        public int Items { get; set; }
        public long Estimate { get; set; }
        public SchedulerModelMetrics Metrics { get; set; } = null!;
        public SingleWork? Single { get; set; }
        public QueuedBatches? Queue { get; set; }
        public List<Waiting>? Batch { get; set; }
    }

    private sealed class Unit<T>(Func<T> work) : SingleWork
    {
        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override bool IsDone => Completion.Task.IsCompleted;

        private bool _canceled;
        private T? _result;
        private Exception? _error;

        public override bool Execute()
        {
            if (Token.IsCancellationRequested)
            {
                _canceled = true;
                return true;
            }
            try
            {
                _result = work();
                return true;
            }
            catch (Exception e)
            {
                _error = e;
                return false;
            }
        }

        public override void Publish()
        {
            if (_canceled) Cancel();
            else if (_error is not null) Completion.TrySetException(_error);
            else Completion.TrySetResult(_result!);
        }

        public override void Refuse(Exception error) => Completion.TrySetException(error);
        public override void Cancel() => Completion.TrySetCanceled(Token);
    }

    private sealed class SlotRequest : SingleWork
    {
        public TaskCompletionSource<ComputeSlot> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override bool IsDone => Completion.Task.IsCompleted;

        public override bool Execute() => throw new InvalidOperationException("a slot is granted, not executed");
        public override void Publish() => throw new InvalidOperationException("a slot is granted, not executed");
        public override void Refuse(Exception error) => Completion.TrySetException(error);
        public override void Cancel() => Completion.TrySetCanceled(Token);
    }
}
