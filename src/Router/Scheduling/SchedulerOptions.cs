namespace Recsys.Router.Scheduling;

/// <summary>What one priority class is promised.</summary>
/// <param name="Objective">Latency target: work of the class is ordered by min(its deadline, arrival + Objective).</param>
/// <param name="Weight">Share of the workers the class is guaranteed while classes contend: Weight / sum of contending weights.</param>
/// <param name="DefaultMaxDelay">How long the first item of a batch waits for company when the model sets no MaxDelay of its own.</param>
/// <param name="Nice">
/// Linux nice value (0-19) of the worker threads that run the class's units. A unit cannot be
/// preempted by the scheduler, but the OS can: when a less urgent unit shares a core with ranking's
/// thread, a higher nice value makes the kernel hand the core to ranking at once. Classes with the
/// same value share one set of threads.
/// </param>
public sealed record ClassPolicy(TimeSpan Objective, double Weight, TimeSpan DefaultMaxDelay, int Nice = 0);

/// <summary>
/// The compute scheduler's policy. Defaults: ranking p99 objective 30 ms and the largest weight;
/// translation (interactive) 100 ms; vision and video (best effort) 1 s, batched with up to 2 ms
/// of delay, guaranteed 1/12 of the workers when all three contend. Nice 0 / 5 / 10: the OS favours
/// ranking's threads over translation's over vision's whenever they want the same core.
/// </summary>
public sealed record SchedulerOptions
{
    public ClassPolicy Ranking { get; init; } = new(TimeSpan.FromMilliseconds(30), 8, TimeSpan.Zero);
    public ClassPolicy Interactive { get; init; } = new(TimeSpan.FromMilliseconds(100), 3, TimeSpan.Zero, Nice: 5);
    public ClassPolicy BestEffort { get; init; } = new(TimeSpan.FromSeconds(1), 1, TimeSpan.FromMilliseconds(2), Nice: 10);

    /// <summary>
    /// While a more urgent class has work or saw work within this window, the less urgent classes
    /// together leave one worker free for it (when there are two or more). A vision batch runs for
    /// milliseconds and cannot be preempted: without the reserve a ranking request arriving while
    /// both cores run vision would wait for the shorter of the two batches.
    /// </summary>
    public TimeSpan ReserveWindow { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Workers the less urgent classes leave free while a more urgent class is active (at most
    /// Workers - 1). 0 lets best effort fill every worker: more throughput, but a ranking request
    /// then waits for a vision batch to end.
    /// </summary>
    public int ReservedWorkers { get; init; } = 1;

    /// <summary>
    /// While a more urgent class is active, a batch of a less urgent class is cut to the items its
    /// run-time estimate says fit in this time (at least one): a ranking request that finds every
    /// worker busy then waits at most about this long. Zero turns the cap off; a model with no
    /// estimate yet runs its full batch.
    /// </summary>
    public TimeSpan YieldUnitTime { get; init; } = TimeSpan.FromMilliseconds(4);

    /// <summary>
    /// When a worker is free and the scheduler would pick the item at once anyway, run a batch-queue
    /// item on the submitting thread instead of handing it to a worker and back: an idle scheduler
    /// then costs a lock, not two thread wake-ups. Only for classes whose Nice is 0 or while no more
    /// urgent class is active (the caller's thread is not niced).
    /// </summary>
    public bool InlineWhenIdle { get; init; } = true;

    /// <summary>
    /// The reserved workers may run units of a class niced above the active urgent class: while
    /// they do, the urgent class may start up to ReservedWorkers units over the budget, and the OS
    /// hands its thread the core at once (it preempts the niced thread) instead of the reserve
    /// standing idle. On 2 cores with ranking using a fraction of one core, a strict reserve gives
    /// vision half the machine; lending gives it nearly all of what ranking leaves. Off: strict.
    /// </summary>
    public bool LendReserve { get; init; } = true;

    /// <summary>Time constant of the decaying per-class busy time that the guaranteed shares are measured on.</summary>
    public TimeSpan ShareWindow { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Refuse work at submission when the queue ahead and the model's run-time estimate say it cannot meet its deadline.</summary>
    public bool Admission { get; init; } = true;

    /// <summary>Weight of the newest run in the per-model, per-batch-size run-time average.</summary>
    public double EstimateSmoothing { get; init; } = 0.2;

    /// <summary>
    /// A model with no run completed for this long, and nothing queued or running, gets its next item
    /// admitted whatever its estimate says: an estimate taken on a busy moment must not refuse the
    /// model forever (only runs refresh it).
    /// </summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromSeconds(1);

    public ClassPolicy For(WorkClass workClass) => workClass switch
    {
        WorkClass.Ranking => Ranking,
        WorkClass.Interactive => Interactive,
        WorkClass.BestEffort => BestEffort,
        _ => throw new ArgumentOutOfRangeException(nameof(workClass), workClass, "unknown work class"),
    };

    /// <summary>Throws naming the first field that cannot work.</summary>
    public void Validate()
    {
        foreach (WorkClass c in Enum.GetValues<WorkClass>())
        {
            ClassPolicy p = For(c);
            if (p.Objective <= TimeSpan.Zero) throw new ArgumentException($"{c}.Objective must be > 0 (got {p.Objective})");
            if (!(p.Weight > 0) || double.IsInfinity(p.Weight)) throw new ArgumentException($"{c}.Weight must be a positive number (got {p.Weight})");
            if (p.DefaultMaxDelay < TimeSpan.Zero) throw new ArgumentException($"{c}.DefaultMaxDelay must be >= 0 (got {p.DefaultMaxDelay})");
            if (p.Nice is < 0 or > 19) throw new ArgumentException($"{c}.Nice must be in 0..19 (got {p.Nice}; lowering nice below 0 needs privilege)");
        }
        if (ReservedWorkers < 0) throw new ArgumentException($"ReservedWorkers must be >= 0 (got {ReservedWorkers})");
        if (ReserveWindow < TimeSpan.Zero) throw new ArgumentException($"ReserveWindow must be >= 0 (got {ReserveWindow})");
        if (YieldUnitTime < TimeSpan.Zero) throw new ArgumentException($"YieldUnitTime must be >= 0 (got {YieldUnitTime})");
        if (ShareWindow <= TimeSpan.Zero) throw new ArgumentException($"ShareWindow must be > 0 (got {ShareWindow})");
        if (!(EstimateSmoothing > 0 && EstimateSmoothing <= 1)) throw new ArgumentException($"EstimateSmoothing must be in (0, 1] (got {EstimateSmoothing})");
        if (ProbeInterval < TimeSpan.Zero) throw new ArgumentException($"ProbeInterval must be >= 0 (got {ProbeInterval})");
    }
}
