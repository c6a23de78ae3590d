using System.Collections.Concurrent;
using System.Diagnostics;
using Recsys.Router.Metrics;
using Recsys.Router.Scheduling;

namespace Recsys.Router.Tests;

/// <summary>
/// The compute scheduler on real worker threads. Orders are made deterministic with gates the test
/// holds: a unit blocks a worker until the test opens its gate, so everything submitted meanwhile
/// is queued together when the worker comes back. Nothing here asserts a duration.
/// </summary>
public sealed class SchedulerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Options that keep the time-driven rules out of the way unless a test is about them: objectives
    /// of an hour make the EDF key the item's own deadline.
    /// </summary>
    private static SchedulerOptions Quiet => new()
    {
        Ranking = new ClassPolicy(TimeSpan.FromHours(1), 8, TimeSpan.Zero),
        Interactive = new ClassPolicy(TimeSpan.FromHours(1), 3, TimeSpan.Zero),
        BestEffort = new ClassPolicy(TimeSpan.FromHours(1), 1, TimeSpan.Zero),
        ReserveWindow = TimeSpan.Zero,
        ProbeInterval = TimeSpan.FromHours(1),
    };

    [Fact]
    public async Task Classes_run_most_urgent_first_and_each_class_by_earliest_deadline()
    {
        using var scheduler = new ComputeScheduler(1, Quiet);
        using var gate = new ManualResetEventSlim();
        // The blocker is best-effort and holds its worker for a while after the gate opens, so best
        // effort has used far more than its share and only priority decides what follows.
        Task<int> blocker = scheduler.RunAsync("gate", WorkClass.BestEffort, long.MaxValue, () =>
        {
            gate.Wait();
            Spin(TimeSpan.FromMilliseconds(100));
            return 0;
        });
        await WaitUntilRunningAsync(scheduler, "gate", WorkClass.BestEffort);

        var order = new ConcurrentQueue<string>();
        long now = Stopwatch.GetTimestamp(), second = Stopwatch.Frequency;
        var tasks = new List<Task<int>>
        {
            Record(scheduler, order, "be-late", WorkClass.BestEffort, now + 50 * second),
            Record(scheduler, order, "be-early", WorkClass.BestEffort, now + 40 * second),
            Record(scheduler, order, "int-late", WorkClass.Interactive, now + 30 * second),
            Record(scheduler, order, "rank-none", WorkClass.Ranking, long.MaxValue),
            Record(scheduler, order, "int-early", WorkClass.Interactive, now + 20 * second),
            Record(scheduler, order, "rank-early", WorkClass.Ranking, now + 10 * second),
        };
        gate.Set();
        await Task.WhenAll(tasks).WaitAsync(Patience);
        await blocker;

        // A ranking item without a deadline is keyed by arrival + the class objective (an hour here).
        Assert.Equal(["rank-early", "rank-none", "int-early", "int-late", "be-early", "be-late"], order.ToArray());
    }

    [Fact]
    public async Task Best_effort_keeps_running_under_continuous_ranking_work()
    {
        using var scheduler = new ComputeScheduler(2, Quiet);
        const int rankingUnits = 400;
        int rankingDone = 0, bestEffortDone = 0, bestEffortWhileRanking = 0;
        using var stop = new CancellationTokenSource();

        // Four producers keep more ranking units queued than two workers can run: under strict
        // priority best effort would never get a worker.
        Task[] producers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (Volatile.Read(ref rankingDone) < rankingUnits)
            {
                await scheduler.RunAsync("rank", WorkClass.Ranking, long.MaxValue, () => Spin(TimeSpan.FromMilliseconds(1)));
                Interlocked.Increment(ref rankingDone);
            }
        })).ToArray();
        Task consumer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await scheduler.RunAsync("vision", WorkClass.BestEffort, long.MaxValue, () => Spin(TimeSpan.FromMilliseconds(1)));
                Interlocked.Increment(ref bestEffortDone);
                if (Volatile.Read(ref rankingDone) < rankingUnits) Interlocked.Increment(ref bestEffortWhileRanking);
            }
        });
        await Task.WhenAll(producers).WaitAsync(Patience);
        await stop.CancelAsync();
        await consumer.WaitAsync(Patience);

        // Weights 8 : 1 promise best effort about 1/9 of the workers (~44 units of 400); a quarter
        // of that leaves room for a noisy machine, zero is what starvation looks like.
        Assert.True(bestEffortWhileRanking >= 10, $"best effort ran {bestEffortWhileRanking} units while ranking ran {rankingUnits}");
        // And ranking still gets the lion's share.
        Assert.True(bestEffortWhileRanking * 2 < rankingUnits, $"best effort ran {bestEffortWhileRanking} units while ranking ran {rankingUnits}");
    }

    [Fact]
    public async Task A_queue_runs_full_batches_in_deadline_order_and_holds_a_partial_one_for_its_delay()
    {
        using var scheduler = new ComputeScheduler(1, Quiet);
        var batches = new ConcurrentQueue<int[]>();
        BatchQueue<int, int> queue = scheduler.CreateQueue<int, int>("resnext", WorkClass.BestEffort, new BatchLimits(4, TimeSpan.FromHours(1)), items =>
        {
            batches.Enqueue([.. items]);
            return [.. items.Select(i => i * 10)];
        });
        using var gate = new ManualResetEventSlim();
        Task<int> blocker = scheduler.RunAsync("gate", WorkClass.BestEffort, long.MaxValue, () => { gate.Wait(); return 0; });
        await WaitUntilRunningAsync(scheduler, "gate", WorkClass.BestEffort);

        // Item i's deadline falls as i grows: the latest submitted are the most urgent.
        long now = Stopwatch.GetTimestamp();
        Task<int>[] first = Enumerable.Range(0, 10).Select(i => queue.SubmitAsync(i, now + (100 - i) * Stopwatch.Frequency)).ToArray();
        gate.Set();
        await blocker;
        await Task.WhenAll(first[2..]).WaitAsync(Patience);

        // Two full batches ran, the two least urgent items wait for company (MaxDelay is an hour).
        Assert.Equal([[9, 8, 7, 6], [5, 4, 3, 2]], batches.ToArray());
        Assert.False(first[0].IsCompleted || first[1].IsCompleted);
        Assert.Equal(2, scheduler.Metrics.For("resnext", "best_effort").QueueDepth);

        Task<int>[] more = [queue.SubmitAsync(10, long.MaxValue), queue.SubmitAsync(11, long.MaxValue)];
        int[] results = await Task.WhenAll([first[0], first[1], .. more]).WaitAsync(Patience);
        Assert.Equal([0, 10, 100, 110], results);
        Assert.Equal([1, 0, 10, 11], batches.ToArray()[2]);
        for (int i = 2; i < 10; i++) Assert.Equal(i * 10, first[i].Result);
        Assert.Equal(3, scheduler.Metrics.For("resnext", "best_effort").BatchSize.Count);
    }

    [Fact]
    public async Task A_partial_batch_runs_once_its_oldest_item_has_waited_max_delay()
    {
        using var scheduler = new ComputeScheduler(1, Quiet);
        var sizes = new ConcurrentQueue<int>();
        BatchQueue<int, int> queue = scheduler.CreateQueue<int, int>("detect", WorkClass.BestEffort, new BatchLimits(64, TimeSpan.FromMilliseconds(1)), items =>
        {
            sizes.Enqueue(items.Count);
            return [.. items.Select(i => -i)];
        });
        using var gate = new ManualResetEventSlim();
        Task<int> blocker = scheduler.RunAsync("gate", WorkClass.BestEffort, long.MaxValue, () => { gate.Wait(); return 0; });
        await WaitUntilRunningAsync(scheduler, "gate", WorkClass.BestEffort);
        Task<int>[] items = Enumerable.Range(1, 3).Select(i => queue.SubmitAsync(i, long.MaxValue)).ToArray();
        long submitted = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(submitted) < TimeSpan.FromMilliseconds(5)) Thread.Yield();
        gate.Set();

        // The gate held the worker past the delay: the three go together, far below MaxBatch.
        int[] results = await Task.WhenAll(items).WaitAsync(Patience);
        Assert.Equal([-1, -2, -3], results);
        await blocker;
        Assert.Equal([3], sizes.ToArray());
    }

    [Fact]
    public async Task Admission_refuses_at_once_what_the_estimate_says_cannot_finish_in_time()
    {
        using var scheduler = new ComputeScheduler(1, Quiet);
        // Teach the estimator: one run of "slow" spins at least 200 ms.
        await scheduler.RunAsync("slow", WorkClass.Interactive, long.MaxValue, () => Spin(TimeSpan.FromMilliseconds(200)));
        Assert.True(scheduler.EstimatedRunTime("slow", 1) >= TimeSpan.FromMilliseconds(200));

        int ran = 0;
        Task<int> refused = scheduler.RunAsync("slow", WorkClass.Interactive, ComputeScheduler.DeadlineAfter(TimeSpan.FromMilliseconds(50)), () => Interlocked.Increment(ref ran));
        // Refused synchronously, at submission: nothing was queued to die.
        Assert.True(refused.IsFaulted);
        var e = await Assert.ThrowsAsync<SchedulerRejectedException>(() => refused);
        Assert.Equal("slow", e.Model);
        Assert.True(e.RetryAfter >= TimeSpan.FromMilliseconds(200), $"retry after {e.RetryAfter}");
        Assert.Equal(1, scheduler.Metrics.For("slow", "interactive").Refused(Refusal.Admission));

        // A generous deadline is admitted and runs.
        Assert.Equal(1, await scheduler.RunAsync("slow", WorkClass.Interactive, ComputeScheduler.DeadlineAfter(TimeSpan.FromMinutes(5)), () => Interlocked.Increment(ref ran)));
        Assert.Equal(1, ran);
    }

    [Fact]
    public async Task Admission_counts_the_work_queued_ahead_of_an_item()
    {
        using var scheduler = new ComputeScheduler(1, Quiet);
        await scheduler.RunAsync("slow", WorkClass.Interactive, long.MaxValue, () => Spin(TimeSpan.FromMilliseconds(200)));
        await scheduler.RunAsync("fast", WorkClass.Interactive, long.MaxValue, () => 0);
        using var gate = new ManualResetEventSlim();
        Task<int> blocker = scheduler.RunAsync("gate", WorkClass.Interactive, long.MaxValue, () => { gate.Wait(); return 0; });
        await WaitUntilRunningAsync(scheduler, "gate", WorkClass.Interactive);

        // 200 ms of "slow" ranking is queued ahead of any interactive item: "fast" alone would make 100 ms, not behind it.
        long deadline = ComputeScheduler.DeadlineAfter(TimeSpan.FromMinutes(1));
        Task<int> ahead = scheduler.RunAsync("slow", WorkClass.Ranking, deadline, () => 1);
        Task<int> behind = scheduler.RunAsync("fast", WorkClass.Interactive, ComputeScheduler.DeadlineAfter(TimeSpan.FromMilliseconds(100)), () => 2);
        Assert.True(behind.IsFaulted);
        await Assert.ThrowsAsync<SchedulerRejectedException>(() => behind);
        Assert.False(ahead.IsCompleted);

        gate.Set();
        Assert.Equal(1, await ahead.WaitAsync(Patience));
        await blocker;
    }

    [Fact]
    public async Task Expired_items_are_dropped_without_running()
    {
        using var scheduler = new ComputeScheduler(1, Quiet);
        using var gate = new ManualResetEventSlim();
        Task<int> blocker = scheduler.RunAsync("gate", WorkClass.Ranking, long.MaxValue, () => { gate.Wait(); return 0; });
        await WaitUntilRunningAsync(scheduler, "gate", WorkClass.Ranking);

        int ran = 0;
        long deadline = ComputeScheduler.DeadlineAfter(TimeSpan.FromMilliseconds(2));
        // Never ran before: no estimate, so admission lets them in.
        Task<int> unit = scheduler.RunAsync("video", WorkClass.BestEffort, deadline, () => Interlocked.Increment(ref ran));
        BatchQueue<int, int> queue = scheduler.CreateQueue<int, int>("video", WorkClass.BestEffort, BatchLimits.Single, items =>
        {
            Interlocked.Add(ref ran, items.Count);
            return [.. items];
        });
        Task<int> item = queue.SubmitAsync(7, deadline);
        Task<int> live = queue.SubmitAsync(8, long.MaxValue);
        while (Stopwatch.GetTimestamp() <= deadline) Thread.Yield();
        gate.Set();

        await Assert.ThrowsAsync<SchedulerRejectedException>(() => unit.WaitAsync(Patience));
        await Assert.ThrowsAsync<SchedulerRejectedException>(() => item.WaitAsync(Patience));
        Assert.Equal(8, await live.WaitAsync(Patience));
        await blocker;
        Assert.Equal(1, ran);
        Assert.Equal(2, scheduler.Metrics.For("video", "best_effort").Refused(Refusal.Expired));
    }

    [Fact]
    public async Task A_failing_batch_fails_every_item_of_it_and_the_scheduler_keeps_serving()
    {
        using var scheduler = new ComputeScheduler(1, Quiet);
        int calls = 0;
        BatchQueue<int, int> queue = scheduler.CreateQueue<int, int>("classify", WorkClass.BestEffort, new BatchLimits(3, TimeSpan.FromHours(1)), items =>
        {
            int call = Interlocked.Increment(ref calls);
            if (call == 1) throw new InvalidDataException("bad tensor in the batch");
            if (call == 2) return [1];
            return [.. items.Select(i => i + 1000)];
        });
        using var gate = new ManualResetEventSlim();
        Task<int> blocker = scheduler.RunAsync("gate", WorkClass.BestEffort, long.MaxValue, () => { gate.Wait(); return 0; });
        await WaitUntilRunningAsync(scheduler, "gate", WorkClass.BestEffort);
        Task<int>[] thrown = Enumerable.Range(0, 3).Select(i => queue.SubmitAsync(i, long.MaxValue)).ToArray();
        Task<int>[] miscounted = Enumerable.Range(3, 3).Select(i => queue.SubmitAsync(i, long.MaxValue)).ToArray();
        gate.Set();
        await blocker;

        foreach (Task<int> t in thrown)
        {
            var e = await Assert.ThrowsAsync<InvalidDataException>(() => t.WaitAsync(Patience));
            Assert.Equal("bad tensor in the batch", e.Message);
        }
        foreach (Task<int> t in miscounted)
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => t.WaitAsync(Patience));
            Assert.Contains("returned 1 results for a batch of 3", e.Message, StringComparison.Ordinal);
        }
        int[] after = await Task.WhenAll(Enumerable.Range(6, 3).Select(i => queue.SubmitAsync(i, long.MaxValue))).WaitAsync(Patience);
        Assert.Equal([1006, 1007, 1008], after);
        await Assert.ThrowsAsync<DivideByZeroException>(() => scheduler.RunAsync<int>("m", WorkClass.Interactive, long.MaxValue, () => throw new DivideByZeroException()));
        Assert.Equal(42, await scheduler.RunAsync("m", WorkClass.Interactive, long.MaxValue, () => 42));
        Assert.Equal(6, scheduler.Metrics.For("classify", "best_effort").Failed);
        Assert.Equal(3, scheduler.Metrics.For("classify", "best_effort").Completed);
    }

    [Fact]
    public async Task Disposal_refuses_what_is_queued_and_lets_the_running_unit_finish()
    {
        var scheduler = new ComputeScheduler(1, Quiet);
        using var gate = new ManualResetEventSlim();
        Task<int> running = scheduler.RunAsync("gate", WorkClass.Ranking, long.MaxValue, () => { gate.Wait(); return 5; });
        await WaitUntilRunningAsync(scheduler, "gate", WorkClass.Ranking);
        int ran = 0;
        Task<int> unit = scheduler.RunAsync("translate", WorkClass.Interactive, long.MaxValue, () => Interlocked.Increment(ref ran));
        BatchQueue<int, int> queue = scheduler.CreateQueue<int, int>("classify", WorkClass.BestEffort, new BatchLimits(8, TimeSpan.Zero), items =>
        {
            Interlocked.Add(ref ran, items.Count);
            return [.. items];
        });
        Task<int>[] items = [queue.SubmitAsync(1, long.MaxValue), queue.SubmitAsync(2, long.MaxValue)];
        Task<ComputeSlot> slot = scheduler.AcquireAsync("rank", WorkClass.Ranking, long.MaxValue);

        Task disposing = Task.Run(scheduler.Dispose);
        foreach (Task t in (Task[])[unit, .. items, slot])
        {
            var e = await Assert.ThrowsAsync<SchedulerRejectedException>(() => t.WaitAsync(Patience));
            Assert.Contains("shutting down", e.Message, StringComparison.Ordinal);
        }
        Assert.False(disposing.IsCompleted);
        gate.Set();
        await disposing.WaitAsync(Patience);
        Assert.Equal(5, await running);
        Assert.Equal(0, ran);
        await Assert.ThrowsAsync<SchedulerRejectedException>(() => scheduler.RunAsync("late", WorkClass.Ranking, long.MaxValue, () => 1));
    }

    [Fact]
    public async Task A_held_slot_takes_a_worker_until_it_is_disposed()
    {
        using var scheduler = new ComputeScheduler(1, Quiet);
        var order = new ConcurrentQueue<string>();
        Task<int> unit;
        using (ComputeSlot slot = await scheduler.AcquireAsync("dlrm", WorkClass.Ranking, long.MaxValue, items: 32))
        {
            unit = scheduler.RunAsync("translate", WorkClass.Interactive, long.MaxValue, () =>
            {
                order.Enqueue("unit");
                return 1;
            });
            // A broken scheduler would run the unit during this pause; a correct one never does.
            Thread.Sleep(50);
            order.Enqueue("slot released");
        }
        await unit.WaitAsync(Patience);
        Assert.Equal(["slot released", "unit"], order.ToArray());
        Assert.Equal(32, scheduler.Metrics.For("dlrm", "ranking").Completed);
    }

    [Fact]
    public async Task Less_urgent_classes_leave_one_worker_free_while_ranking_is_active()
    {
        using var scheduler = new ComputeScheduler(2, Quiet with { ReserveWindow = TimeSpan.FromHours(1) });
        await scheduler.RunAsync("rank", WorkClass.Ranking, long.MaxValue, () => 0);
        using var gate = new ManualResetEventSlim();
        int started = 0;
        Task<int>[] vision = Enumerable.Range(0, 2).Select(_ => scheduler.RunAsync("vision", WorkClass.BestEffort, long.MaxValue, () =>
        {
            Interlocked.Increment(ref started);
            gate.Wait();
            return 1;
        })).ToArray();
        await WaitUntilRunningAsync(scheduler, "vision", WorkClass.BestEffort);

        // One vision unit holds a worker, the other waits: ranking gets the free one at once.
        Assert.Equal(7, await scheduler.RunAsync("rank", WorkClass.Ranking, long.MaxValue, () => 7).WaitAsync(Patience));
        Assert.Equal(1, Volatile.Read(ref started));
        gate.Set();
        await Task.WhenAll(vision).WaitAsync(Patience);
        Assert.Equal(2, started);
    }

    [Fact]
    public async Task Metrics_show_per_model_batches_waits_and_refusals_in_prometheus_text()
    {
        using var scheduler = new ComputeScheduler(1, Quiet);
        await scheduler.RunAsync("slow", WorkClass.Interactive, long.MaxValue, () => Spin(TimeSpan.FromMilliseconds(50)));
        Task<int> refused = scheduler.RunAsync("slow", WorkClass.Interactive, ComputeScheduler.DeadlineAfter(TimeSpan.FromMilliseconds(1)), () => 0);
        await Assert.ThrowsAsync<SchedulerRejectedException>(() => refused);
        BatchQueue<int, int> queue = scheduler.CreateQueue<int, int>("resnext", WorkClass.BestEffort, new BatchLimits(4, TimeSpan.Zero), items => [.. items]);
        await queue.SubmitAsync(1, long.MaxValue);

        string text = PrometheusText.Write(new ServingMetrics(), [], scheduler.Metrics);
        Assert.Contains("recsys_scheduler_workers 1\n", text, StringComparison.Ordinal);
        Assert.Contains("recsys_scheduler_refusals_total{model=\"slow\",class=\"interactive\",reason=\"admission\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("recsys_scheduler_refusals_total{model=\"slow\",class=\"interactive\",reason=\"expired\"} 0\n", text, StringComparison.Ordinal);
        Assert.Contains("recsys_scheduler_batch_items_count{model=\"slow\",class=\"interactive\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("recsys_scheduler_items_total{model=\"resnext\",class=\"best_effort\",outcome=\"ok\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("recsys_scheduler_wait_seconds_count{model=\"resnext\",class=\"best_effort\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("recsys_scheduler_queue_depth{model=\"resnext\",class=\"best_effort\"} 0\n", text, StringComparison.Ordinal);
        Assert.Contains("recsys_scheduler_busy_seconds_total{class=\"interactive\"}", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_name_the_field_that_cannot_work()
    {
        var e = Assert.Throws<ArgumentException>(() => new ComputeScheduler(1, new SchedulerOptions { BestEffort = new ClassPolicy(TimeSpan.FromSeconds(1), 0, TimeSpan.Zero) }));
        Assert.Contains("BestEffort.Weight", e.Message, StringComparison.Ordinal);
        using var scheduler = new ComputeScheduler(1);
        var limits = Assert.Throws<ArgumentException>(() => scheduler.CreateQueue<int, int>("m", WorkClass.BestEffort, new BatchLimits(0, TimeSpan.Zero), i => [.. i]));
        Assert.Contains("MaxBatch", limits.Message, StringComparison.Ordinal);
    }

    private static Task<int> Record(ComputeScheduler scheduler, ConcurrentQueue<string> order, string name, WorkClass workClass, long deadline) =>
        scheduler.RunAsync(name, workClass, deadline, () =>
        {
            order.Enqueue(name);
            return 0;
        });

    /// <summary>Waits (without a time assertion) until a unit of the model holds a worker.</summary>
    private static async Task WaitUntilRunningAsync(ComputeScheduler scheduler, string model, WorkClass workClass)
    {
        SchedulerModelMetrics m = scheduler.Metrics.For(model, ComputeScheduler.ClassLabel(workClass));
        long start = Stopwatch.GetTimestamp();
        while (m.Wait.Count == 0)
        {
            if (Stopwatch.GetElapsedTime(start) > Patience) throw new TimeoutException($"no unit of {model} started");
            await Task.Delay(1);
        }
    }

    private static int Spin(TimeSpan time)
    {
        long start = Stopwatch.GetTimestamp();
        int n = 0;
        while (Stopwatch.GetElapsedTime(start) < time) n++;
        return n;
    }
}
