using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Recsys.Cli.Bench.Arrivals;
using Recsys.Cli.Bench.Reporting;
using Recsys.Cli.Bench.Workload;

namespace Recsys.Cli.Bench;

/// <summary>The bounds of one open-loop run.</summary>
public sealed record LoadPlan
{
    public required double Qps { get; init; }
    public string Arrivals { get; init; } = "poisson";
    public required TimeSpan Duration { get; init; }
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Measured requests after which the run stops early (long.MaxValue: none).</summary>
    public long MaxRequests { get; init; } = long.MaxValue;

    /// <summary>Requests outstanding at once; arrivals beyond it are dropped and reported, not queued in the client.</summary>
    public int MaxInFlight { get; init; } = 1024;

    public ulong Seed { get; init; } = 1;
}

/// <summary>
/// Sends requests at the instants an arrival process schedules, whether or not earlier ones have
/// been answered (open loop). Latency is measured from the scheduled instant, not from when the
/// request actually left, so a client or server that falls behind shows the queueing delay a real
/// user would see instead of hiding it (coordinated omission, as wrk2 and HdrHistogram describe it).
/// </summary>
public sealed class OpenLoopDriver(HttpClient http, Uri rankEndpoint, Uri? metricsEndpoint, string model, RequestPool pool)
{
    private static readonly double TicksPerSecond = Stopwatch.Frequency;

    public RequestPool Pool => pool;

    public async Task<LoadResult> RunAsync(LoadPlan plan, ProgressLine? progress, string label, CancellationToken cancel)
    {
        var run = new Run(this, plan);
        using var ticker = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        Task scheduler = Task.Factory.StartNew(() => run.Schedule(cancel), cancel, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        // The baseline (server counters, this process's CPU time) is taken when the warm-up ends,
        // so neither the server's warm-up work nor the client's JIT is in the deltas.
        Task<(PrometheusSnapshot? Metrics, TimeSpan Cpu)> baseline = BaselineAsync(plan.Warmup, cancel);
        while (!run.Done.IsCompleted)
        {
            Task tick = ticker.WaitForNextTickAsync(CancellationToken.None).AsTask();
            await Task.WhenAny(tick, run.Done).ConfigureAwait(false);
            progress?.Update(run.Status(label, run.Elapsed));
        }
        await scheduler.ConfigureAwait(false);
        (PrometheusSnapshot? before, TimeSpan cpuBefore) = await baseline.ConfigureAwait(false);
        TimeSpan clientCpu = CpuTime() - cpuBefore;
        PrometheusSnapshot? after = before is null ? null : await ScrapeAsync(cancel).ConfigureAwait(false);
        progress?.Update(run.Status(label, run.Elapsed));
        return run.Result(before is not null && after is not null ? ServerBreakdown.Between(before, after, model) : null, clientCpu);
    }

    private async Task<(PrometheusSnapshot?, TimeSpan)> BaselineAsync(TimeSpan warmup, CancellationToken cancel)
    {
        if (warmup > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(warmup, cancel).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // A cancelled run still reports what it measured.
            }
        }
        TimeSpan cpu = CpuTime();
        return (await ScrapeAsync(cancel).ConfigureAwait(false), cpu);
    }

    private static TimeSpan CpuTime()
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    private async Task<PrometheusSnapshot?> ScrapeAsync(CancellationToken cancel)
    {
        if (metricsEndpoint is null) return null;
        try
        {
            using HttpResponseMessage response = await http.GetAsync(metricsEndpoint, cancel).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode) return null;
            return PrometheusSnapshot.Parse(await response.Content.ReadAsStringAsync(cancel).ConfigureAwait(false));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            // A front end without /metrics still gets a client-side report.
            return null;
        }
    }

    /// <summary>The mutable state of one run; counters are only touched through Interlocked.</summary>
    private sealed class Run(OpenLoopDriver driver, LoadPlan plan)
    {
        private readonly LatencyRecorder _latency = new();
        private readonly LatencyRecorder _lag = new();
        private readonly ConcurrentDictionary<string, long> _errors = new(StringComparer.Ordinal);
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly long _start = Stopwatch.GetTimestamp();
        private readonly long _measureFrom = Stopwatch.GetTimestamp() + (long)(plan.Warmup.TotalSeconds * TicksPerSecond);
        // Starts at 1 for the scheduler itself, so the run is done only when it has stopped and every send has completed.
        private long _outstanding = 1;
        private long _inFlight, _scheduled, _sent, _ok, _dropped, _okSamples, _okLookups, _warmupSent;
        private long _stopAt, _lastAnswer;

        public Task Done => _done.Task;
        public double Elapsed => Stopwatch.GetElapsedTime(_start).TotalSeconds;

        public void Schedule(CancellationToken cancel)
        {
            try
            {
                ArrivalProcess arrivals = ArrivalProcess.Parse(plan.Arrivals, plan.Qps, plan.Seed);
                double end = (plan.Warmup + plan.Duration).TotalSeconds;
                double warmup = plan.Warmup.TotalSeconds;
                double at = 0;
                while (!cancel.IsCancellationRequested)
                {
                    at += arrivals.NextGapSeconds();
                    if (at >= end || _scheduled >= plan.MaxRequests)
                    {
                        // The window closes where the schedule stopped, not at the last send: a sparse
                        // Poisson tail must not shrink it and inflate the rate.
                        Volatile.Write(ref _stopAt, _start + (long)(Math.Min(at, end) * TicksPerSecond));
                        break;
                    }
                    long due = _start + (long)(at * TicksPerSecond);
                    PreciseSleep.Until(due, cancel);
                    bool measured = at >= warmup;
                    if (measured) _scheduled++;
                    if (Interlocked.Read(ref _inFlight) >= plan.MaxInFlight)
                    {
                        if (measured) Interlocked.Increment(ref _dropped);
                        continue;
                    }
                    Interlocked.Increment(ref _inFlight);
                    Interlocked.Increment(ref _outstanding);
                    if (measured) Interlocked.Increment(ref _sent);
                    else Interlocked.Increment(ref _warmupSent);
                    BenchRequest request = driver.Pool.Next();
                    // Started on this thread: the request is written before SendAsync first yields, which saves a
                    // thread-pool wake-up per request; the answer is awaited on the pool.
                    _ = SendAsync(request, due, measured, cancel);
                }
            }
            finally
            {
                if (Volatile.Read(ref _stopAt) == 0) Volatile.Write(ref _stopAt, Stopwatch.GetTimestamp());
                Complete();
            }
        }

        private async Task SendAsync(BenchRequest request, long due, bool measured, CancellationToken cancel)
        {
            // How late the client itself was: the scheduler's sleep granularity plus the thread-pool hop.
            // It is inside every latency figure, so it is reported beside them.
            if (measured) _lag.RecordMicros((Stopwatch.GetTimestamp() - due) * 1_000_000 / Stopwatch.Frequency);
            string? failure = null;
            bool ok = false;
            try
            {
                using HttpResponseMessage response = await driver.PostAsync(request, cancel).ConfigureAwait(false);
                await response.Content.CopyToAsync(Stream.Null, cancel).ConfigureAwait(false);
                ok = response.IsSuccessStatusCode;
                if (!ok) failure = ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                failure = "cancelled";
            }
            catch (TaskCanceledException)
            {
                failure = "timeout";
            }
            catch (HttpRequestException)
            {
                failure = "connection";
            }
            catch (IOException)
            {
                failure = "connection";
            }
            catch (Exception e)
            {
                // Anything else is still one answered-or-not request: it must be counted and must
                // release its slot, or the run would wait for it forever.
                failure = "client:" + e.GetType().Name;
            }
            long now = Stopwatch.GetTimestamp();
            if (measured)
            {
                if (ok)
                {
                    _latency.RecordMicros((long)((now - due) * 1e6 / TicksPerSecond));
                    Interlocked.Add(ref _okSamples, request.Samples);
                    Interlocked.Add(ref _okLookups, request.Lookups);
                    Interlocked.Increment(ref _ok);
                }
                else
                {
                    _errors.AddOrUpdate(failure!, 1, static (_, c) => c + 1);
                }
                long last;
                do
                {
                    last = Volatile.Read(ref _lastAnswer);
                }
                while (now > last && Interlocked.CompareExchange(ref _lastAnswer, now, last) != last);
            }
            Interlocked.Decrement(ref _inFlight);
            Complete();
        }

        private void Complete()
        {
            if (Interlocked.Decrement(ref _outstanding) == 0) _done.TrySetResult();
        }

        public string Status(string label, double elapsed)
        {
            bool warming = elapsed < plan.Warmup.TotalSeconds;
            double measuredSeconds = Math.Max(1e-9, elapsed - plan.Warmup.TotalSeconds);
            long errors = _errors.Values.Sum();
            return string.Create(CultureInfo.InvariantCulture,
                $"{label} {elapsed,6:0.0}s {(warming ? "warm-up" : "measure")}  sent {Interlocked.Read(ref _sent),8}  ok {Interlocked.Read(ref _ok),8}  err {errors,5}  drop {Interlocked.Read(ref _dropped),5}  in-flight {Interlocked.Read(ref _inFlight),4}  {(warming ? 0 : Interlocked.Read(ref _ok) / measuredSeconds),8:0} qps");
        }

        public LoadResult Result(ServerBreakdown? server, TimeSpan clientCpu)
        {
            double SecondsSinceMeasure(long t) => t <= _measureFrom ? 0 : (t - _measureFrom) / TicksPerSecond;
            return new LoadResult
            {
                TargetQps = plan.Qps,
                OfferedSeconds = SecondsSinceMeasure(_stopAt),
                AnsweredSeconds = SecondsSinceMeasure(Math.Max(_lastAnswer, _stopAt)),
                Scheduled = _scheduled,
                Sent = _sent,
                Ok = _ok,
                Errors = new SortedDictionary<string, long>(_errors, StringComparer.Ordinal),
                DroppedByClient = _dropped,
                OkSamples = _okSamples,
                OkLookups = _okLookups,
                Latency = _latency.Summarize(),
                ClientLag = _lag.Summarize(),
                ClientCpuSeconds = clientCpu.TotalSeconds,
                Server = server,
            };
        }
    }

    private Task<HttpResponseMessage> PostAsync(BenchRequest request, CancellationToken cancel)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, rankEndpoint) { Content = new ByteArrayContent(request.Body) };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue(pool.ContentType);
        return http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancel);
    }
}
