using System.Diagnostics;
using System.Globalization;
using Recsys.Router.Scheduling;

namespace Recsys.Router.Tests;

/// <summary>
/// The levers that keep ranking fast next to vision: niced worker threads, run-time capped
/// best-effort batches, and units taken on the submitting thread. Only deterministic properties:
/// which thread ran a unit and at what nice value, how a batch was split; never a duration.
/// </summary>
public sealed class SchedulerIsolationTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static SchedulerOptions Quiet => new()
    {
        Ranking = new ClassPolicy(TimeSpan.FromHours(1), 8, TimeSpan.Zero),
        Interactive = new ClassPolicy(TimeSpan.FromHours(1), 3, TimeSpan.Zero),
        BestEffort = new ClassPolicy(TimeSpan.FromHours(1), 1, TimeSpan.Zero),
        ReserveWindow = TimeSpan.Zero,
        ProbeInterval = TimeSpan.FromHours(1),
    };

    [Fact]
    public async Task Each_class_runs_on_threads_at_its_own_nice_value()
    {
        using var scheduler = new ComputeScheduler(2, Quiet with
        {
            Interactive = Quiet.Interactive with { Nice = 5 },
            BestEffort = Quiet.BestEffort with { Nice = 12 },
        });
        // RunAsync units always run on a worker (only batch-queue items and slots are taken inline).
        Assert.Equal(0, await scheduler.RunAsync("rank", WorkClass.Ranking, long.MaxValue, OwnNice).WaitAsync(Patience));
        Assert.Equal(5, await scheduler.RunAsync("translate", WorkClass.Interactive, long.MaxValue, OwnNice).WaitAsync(Patience));
        Assert.Equal(12, await scheduler.RunAsync("vision", WorkClass.BestEffort, long.MaxValue, OwnNice).WaitAsync(Patience));
        // The niced thread stays niced; ranking's thread is never niced by it.
        Assert.Equal(0, await scheduler.RunAsync("rank", WorkClass.Ranking, long.MaxValue, OwnNice).WaitAsync(Patience));
        Assert.Equal(12, await scheduler.RunAsync("vision", WorkClass.BestEffort, long.MaxValue, OwnNice).WaitAsync(Patience));
    }

    [Fact]
    public void Thread_priority_does_not_reach_the_linux_nice_value()
    {
        // Why the scheduler calls setpriority itself: .NET ignores Thread.Priority on Linux.
        int nice = -1;
        var t = new Thread(() => nice = OwnNice()) { Priority = ThreadPriority.Lowest };
        t.Start();
        t.Join();
        Assert.Equal(0, nice);
    }

    [Fact]
    public void Nice_outside_0_to_19_is_refused_naming_the_class()
    {
        var e = Assert.Throws<ArgumentException>(() => new ComputeScheduler(1, new SchedulerOptions { Interactive = new ClassPolicy(TimeSpan.FromSeconds(1), 1, TimeSpan.Zero, Nice: -5) }));
        Assert.Contains("Interactive.Nice", e.Message, StringComparison.Ordinal);
        var y = Assert.Throws<ArgumentException>(() => new ComputeScheduler(1, new SchedulerOptions { YieldUnitTime = TimeSpan.FromMilliseconds(-1) }));
        Assert.Contains("YieldUnitTime", y.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Items_within_a_time_follow_the_per_bucket_estimates()
    {
        var estimates = new RunTimeEstimates(0.2);
        Assert.Equal(32, estimates.ItemsWithin("never-ran", 1, 32, 1.25));
        estimates.Record("m", 32, 8000, 0);
        // 17-32 share the measured 8000-tick bucket; 16 scales from it to 4000.
        Assert.Equal(16, estimates.ItemsWithin("m", 4000, 32, 1.25));
        Assert.Equal(16, estimates.ItemsWithin("m", 7999, 32, 1.25));
        Assert.Equal(32, estimates.ItemsWithin("m", 8000, 32, 1.25));
        Assert.Equal(20, estimates.ItemsWithin("m", 8000, 20, 1.25));
        estimates.Record("m", 16, 3000, 0);
        // 9-16 now measured (3000); 8 scales from that bucket to 1500.
        Assert.Equal(8, estimates.ItemsWithin("m", 2000, 32, 1.25));
        Assert.Equal(16, estimates.ItemsWithin("m", 4000, 32, 1.25));
        // One item cannot be split: at least one, however small the time.
        Assert.Equal(1, estimates.ItemsWithin("m", 1, 32, 100));

        // A model whose run hardly grows with the batch is not cut: 16 items cost 7000 ticks, 32
        // cost 8000 (250 each); 8 fit in 5000 (scaled from 16: 3500) but at 437 each, 1.75x.
        estimates.Record("flat", 16, 7000, 0);
        estimates.Record("flat", 32, 8000, 0);
        Assert.Equal(32, estimates.ItemsWithin("flat", 5000, 32, 1.25));
        Assert.Equal(8, estimates.ItemsWithin("flat", 5000, 32, 2));
    }

    [Fact]
    public async Task While_ranking_is_active_a_best_effort_batch_is_cut_to_what_fits_in_the_yield_time()
    {
        // The first batch runs while ranking is idle and sleeps 1 s: its estimate (at least
        // 1000 ms for 32 items) is over the 990 ms yield time and half of it under.
        using var scheduler = new ComputeScheduler(2, Quiet with { YieldUnitTime = TimeSpan.FromMilliseconds(990) });
        var sizes = new List<int>();
        BatchQueue<int, int> queue = scheduler.CreateQueue<int, int>("vision", WorkClass.BestEffort, new BatchLimits(32, TimeSpan.Zero), items =>
        {
            lock (sizes)
            {
                sizes.Add(items.Count);
                if (sizes.Count == 1) Thread.Sleep(1000);
            }
            return [.. items];
        });

        await RunBehindGatesAsync(scheduler, gates: 2, () => Enumerable.Range(0, 32).Select(i => queue.SubmitAsync(i, long.MaxValue)).ToArray());
        Assert.Equal([32], Snapshot(sizes));

        // Ranking holds a slot (active); a gate holds the other worker while 32 items queue.
        using (await scheduler.AcquireAsync("dlrm", WorkClass.Ranking, long.MaxValue))
        {
            await RunBehindGatesAsync(scheduler, gates: 1, () => Enumerable.Range(0, 32).Select(i => queue.SubmitAsync(i, long.MaxValue)).ToArray());
        }
        Assert.Equal([32, 16, 16], Snapshot(sizes));
    }

    [Fact]
    public async Task A_lone_item_on_an_idle_scheduler_runs_on_the_submitting_thread()
    {
        using var scheduler = new ComputeScheduler(2);
        BatchQueue<int, string> queue = scheduler.CreateQueue<int, string>("vision", WorkClass.BestEffort, BatchLimits.Single, items => [.. items.Select(_ => ThreadLabel())]);
        string caller = ThreadLabel();
        Task<string> inline = queue.SubmitAsync(1, long.MaxValue);
        // Run before SubmitAsync returned, on this thread: no worker was woken.
        Assert.True(inline.IsCompletedSuccessfully);
        Assert.Equal(caller, await inline);
        Assert.Equal(1, scheduler.Metrics.For("vision", "best_effort").Completed);

        using var hopping = new ComputeScheduler(2, new SchedulerOptions { InlineWhenIdle = false });
        BatchQueue<int, string> hopQueue = hopping.CreateQueue<int, string>("vision", WorkClass.BestEffort, BatchLimits.Single, items => [.. items.Select(_ => ThreadLabel())]);
        Assert.StartsWith("recsys-compute-n10-", await hopQueue.SubmitAsync(1, long.MaxValue).WaitAsync(Patience), StringComparison.Ordinal);
    }

    [Fact]
    public async Task While_ranking_is_active_a_niced_class_item_goes_to_its_niced_worker_not_the_caller()
    {
        using var scheduler = new ComputeScheduler(2);
        BatchQueue<int, string> queue = scheduler.CreateQueue<int, string>("vision", WorkClass.BestEffort, BatchLimits.Single, items => [.. items.Select(_ => ThreadLabel())]);
        using (await scheduler.AcquireAsync("dlrm", WorkClass.Ranking, long.MaxValue))
        {
            Assert.StartsWith("recsys-compute-n10-", await queue.SubmitAsync(1, long.MaxValue).WaitAsync(Patience), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_ranking_slot_is_granted_on_the_requesting_thread_while_best_effort_waits_behind_the_reserve()
    {
        using var scheduler = new ComputeScheduler(2, Quiet with { ReserveWindow = TimeSpan.FromHours(1) });
        // Ranking seen once: active for the hour-long window, so best effort keeps to one worker.
        (await scheduler.AcquireAsync("dlrm", WorkClass.Ranking, long.MaxValue)).Dispose();
        using var gate = new ManualResetEventSlim();
        Task<int> holder = scheduler.RunAsync("vision", WorkClass.BestEffort, long.MaxValue, () =>
        {
            gate.Wait();
            return 0;
        });
        await WaitUntilRunningAsync(scheduler, "vision");
        Task<int> waiting = scheduler.RunAsync("vision", WorkClass.BestEffort, long.MaxValue, () => 1);

        // Best effort is queued, but the reserve would give ranking the free worker anyway: the
        // slot is granted before AcquireAsync returns, with no hop through a worker thread.
        Task<ComputeSlot> slot = scheduler.AcquireAsync("dlrm", WorkClass.Ranking, long.MaxValue);
        Assert.True(slot.IsCompletedSuccessfully);
        Assert.False(waiting.IsCompleted);
        (await slot).Dispose();
        gate.Set();
        Assert.Equal(1, await waiting.WaitAsync(Patience));
        await holder;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_reserve_is_lent_to_niced_best_effort_and_ranking_runs_over_the_budget_beside_it(bool lend)
    {
        using var scheduler = new ComputeScheduler(2, new SchedulerOptions { ReserveWindow = TimeSpan.FromHours(1), LendReserve = lend });
        // Ranking seen once: active for the hour-long window.
        await scheduler.RunAsync("rank", WorkClass.Ranking, long.MaxValue, () => 0).WaitAsync(Patience);
        using var gate = new ManualResetEventSlim();
        int started = 0;
        Task<int>[] vision = Enumerable.Range(0, 2).Select(_ => scheduler.RunAsync("vision", WorkClass.BestEffort, long.MaxValue, () =>
        {
            Interlocked.Increment(ref started);
            gate.Wait();
            return 1;
        })).ToArray();
        await WaitUntilRunningAsync(scheduler, "vision");
        if (lend)
        {
            // Lent: both niced vision units hold the two workers...
            long start = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref started) < 2)
            {
                if (Stopwatch.GetElapsedTime(start) > Patience) throw new TimeoutException("the second vision unit did not start");
                await Task.Delay(1);
            }
        }

        // ...and ranking still runs at once, one unit over the budget (the OS preempts a niced thread for it).
        Assert.Equal(7, await scheduler.RunAsync("rank", WorkClass.Ranking, long.MaxValue, () => 7).WaitAsync(Patience));
        Assert.Equal(lend ? 2 : 1, Volatile.Read(ref started));
        gate.Set();
        await Task.WhenAll(vision).WaitAsync(Patience);
    }

    /// <summary>Blocks <paramref name="gates"/> workers with best-effort units, submits, then opens the gates and awaits everything.</summary>
    private static async Task RunBehindGatesAsync(ComputeScheduler scheduler, int gates, Func<Task<int>[]> submit)
    {
        using var gate = new ManualResetEventSlim();
        int started = 0;
        Task<int>[] holders = Enumerable.Range(0, gates).Select(_ => scheduler.RunAsync("gate", WorkClass.BestEffort, long.MaxValue, () =>
        {
            Interlocked.Increment(ref started);
            gate.Wait();
            return 0;
        })).ToArray();
        long start = Stopwatch.GetTimestamp();
        while (Volatile.Read(ref started) < gates)
        {
            if (Stopwatch.GetElapsedTime(start) > Patience) throw new TimeoutException("the gate units did not start");
            await Task.Delay(1);
        }
        Task<int>[] items = submit();
        gate.Set();
        await Task.WhenAll(holders).WaitAsync(Patience);
        await Task.WhenAll(items).WaitAsync(Patience);
    }

    private static int[] Snapshot(List<int> sizes)
    {
        lock (sizes) return [.. sizes];
    }

    private static async Task WaitUntilRunningAsync(ComputeScheduler scheduler, string model)
    {
        var m = scheduler.Metrics.For(model, "best_effort");
        long start = Stopwatch.GetTimestamp();
        while (m.Wait.Count == 0)
        {
            if (Stopwatch.GetElapsedTime(start) > Patience) throw new TimeoutException($"no unit of {model} started");
            await Task.Delay(1);
        }
    }

    private static string ThreadLabel() => $"{Thread.CurrentThread.Name}#{Environment.CurrentManagedThreadId}";

    /// <summary>The calling thread's nice value, field 19 of /proc/thread-self/stat (after the parenthesised name, which may hold spaces).</summary>
    private static int OwnNice()
    {
        string stat = File.ReadAllText("/proc/thread-self/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state), so field 19 is fields[16].
        return int.Parse(fields[16], CultureInfo.InvariantCulture);
    }
}
