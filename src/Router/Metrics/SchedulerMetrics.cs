using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Recsys.Router.Metrics;

/// <summary>Why the scheduler answered an item without running it.</summary>
public enum Refusal
{
    /// <summary>Refused at submission: the queue ahead and the run-time estimate miss its deadline.</summary>
    Admission,
    /// <summary>Its deadline passed while it waited: dropped, never run.</summary>
    Expired,
    /// <summary>The scheduler stopped with the item still queued.</summary>
    Shutdown,
}

/// <summary>One model's queue on the compute scheduler, exported at /metrics.</summary>
public sealed class SchedulerModelMetrics
{
    private readonly long[] _refusals = new long[Enum.GetValues<Refusal>().Length];
    private long _queued, _completed, _failed;

    public SchedulerModelMetrics(string model, string workClass)
    {
        Model = model;
        Class = workClass;
    }

    public string Model { get; }
    public string Class { get; }

    /// <summary>Items per executed unit (a RunAsync unit or a slot counts its declared items).</summary>
    public LatencyHistogram BatchSize { get; } = new(LatencyHistogram.SizeBuckets);

    /// <summary>Per item: from submission to the start of the unit that runs it.</summary>
    public LatencyHistogram Wait { get; } = new(LatencyHistogram.SecondsBuckets);

    /// <summary>Per unit: how long it held a worker.</summary>
    public LatencyHistogram Run { get; } = new(LatencyHistogram.SecondsBuckets);

    public long QueueDepth => Interlocked.Read(ref _queued);
    public long Completed => Interlocked.Read(ref _completed);
    public long Failed => Interlocked.Read(ref _failed);

    public long Refused(Refusal reason) => Interlocked.Read(ref _refusals[(int)reason]);

    public void Queued(int delta) => Interlocked.Add(ref _queued, delta);

    public void Refuse(Refusal reason) => Interlocked.Increment(ref _refusals[(int)reason]);

    public void Ran(int items, TimeSpan run, bool failed)
    {
        BatchSize.Observe(items);
        Run.Observe(run.TotalSeconds);
        Interlocked.Add(ref failed ? ref _failed : ref _completed, items);
    }
}

/// <summary>The compute scheduler's metrics: per model, plus busy worker time per class.</summary>
public sealed class SchedulerMetrics(int workers)
{
    private readonly ConcurrentDictionary<string, SchedulerModelMetrics> _models = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox<long>> _busyMicros = new(StringComparer.Ordinal);

    public int Workers { get; } = workers;

    public SchedulerModelMetrics For(string model, string workClass) =>
        _models.GetOrAdd(workClass + "\n" + model, _ => new SchedulerModelMetrics(model, workClass));

    public IEnumerable<SchedulerModelMetrics> Models => _models.Values.OrderBy(m => m.Model, StringComparer.Ordinal).ThenBy(m => m.Class, StringComparer.Ordinal);

    public void AddBusy(string workClass, TimeSpan busy) =>
        Interlocked.Add(ref _busyMicros.GetOrAdd(workClass, _ => new StrongBox<long>()).Value, (long)(busy.TotalMilliseconds * 1000));

    /// <summary>Worker seconds spent per class since start.</summary>
    public IEnumerable<(string Class, double Seconds)> BusySeconds() =>
        _busyMicros.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, Interlocked.Read(ref kv.Value.Value) / 1e6));
}
