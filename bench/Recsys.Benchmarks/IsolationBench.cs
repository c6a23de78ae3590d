using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using Microsoft.ML.OnnxRuntime;
using Recsys.DenseCompute.Gemm;
using Recsys.OnnxModels.Runtime;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Scheduling;

namespace Recsys.Benchmarks;

/// <summary>
/// The isolation proof of issue 7: ranking at a fixed QPS alone, then with a saturating
/// best-effort ONNX Runtime load on the same compute scheduler; plus the scheduler's overhead over
/// a bare session.Run at batch 1. Phases of one round run back to back, rounds repeat, medians last.
/// </summary>
/// <remarks>
/// Ranking: the MLPerf DLRM bottom (13-512-256-64) and top (479-1024-1024-512-256-1) MLPs through
/// our PackedLinear kernels at --rank-batch samples, inside a Ranking-class slot (what ModelBatcher
/// does around the engine). Best effort: a stack of --be-layers Gemm+Relu layers of width --be-width
/// written as ONNX with OrtModelWriter, run by ONNX Runtime (OrtSessions: one intra-op thread) from a
/// BatchQueue of up to --be-batch items, kept saturated by --be-clients closed-loop clients.
/// --be-path served (default) runs each batch through OnnxGraph.RunBatch, the code the server runs for
/// a vision batch (one GraphRequest per item, inputs stacked into rented arrays); alloc is the
/// previous runner that allocated its [n, width] tensors per batch, pooled the same runner renting them.
/// The summary gives per-round medians and, beside them, percentiles over the requests of all rounds
/// pooled (a 3 s phase at 50 QPS has 150 requests, so its own p99 is its second-slowest request).
/// </remarks>
internal static class IsolationBench
{
    public static void Run(string[] args)
    {
        var o = Options.Parse(args);
        string onnx = Path.Combine(Path.GetTempPath(), $"recsys-isolation-{Environment.ProcessId}.onnx");
        File.WriteAllBytes(onnx, OrtModelWriter.Mlp(BestEffortLayers(o.BeWidth, o.BeLayers)));
        try
        {
            if (o.GcLatency is { } mode) GCSettings.LatencyMode = mode;
            using var vision = new VisionRunner(onnx, o.BeSessions, o.BeWidth, o.BePath);
            var ranking = new RankingRunner(o.RankBatch);
            Console.WriteLine($"isolation: workers {o.Workers} (reserved for ranking {Math.Min(o.Reserve, o.Workers - 1)}), best-effort nice {o.BeNice}, reserve lent {o.Lend}, best-effort path {o.BePath}, yield unit {o.YieldMs} ms, inline {o.Inline}, ranking {o.Qps} QPS x batch {o.RankBatch}, best effort width {o.BeWidth} x {o.BeLayers} layers, batch <= {o.BeBatch}, {o.BeClients} clients, {o.BeSessions} ONNX Runtime session(s), {o.Seconds} s per phase, {o.Rounds} rounds");
            Console.WriteLine($"GC: server {GCSettings.IsServerGC}, latency mode {GCSettings.LatencyMode}, System.GC.Concurrent {AppContext.GetData("System.GC.Concurrent") ?? "default (on)"}, DOTNET_GCgen0size {Environment.GetEnvironmentVariable("DOTNET_GCgen0size") ?? "default"}");
            Console.WriteLine($"load average at start: {GemmCompare.LoadAverage()}");
            Warm(ranking, vision, o);

            var rows = new List<Round>();
            for (int r = 0; r < o.Rounds; r++)
            {
                var round = new Round { Bare = RankingPhase(ranking, o, scheduler: null) };
                var gc = GcPause.Start();
                round.Alone = WithScheduler(o, s => RankingPhase(ranking, o, s));
                round.AloneGc = gc.Stop();
                round.VisionAlone = WithScheduler(o, s => VisionPhase(vision, o, s, null));
                gc = GcPause.Start();
                (round.WithLoad, round.VisionShared) = WithScheduler(o, s =>
                {
                    var rank = Task.Run(() => RankingPhase(ranking, o, s));
                    double shared = VisionPhase(vision, o, s, rank);
                    return (rank.Result, shared);
                });
                round.SharedGc = gc.Stop();
                (round.OrtBare, round.OrtScheduled) = Overhead(vision, o);
                rows.Add(round);
                Console.WriteLine(round.Line(r + 1));
            }
            Console.WriteLine($"load average at end: {GemmCompare.LoadAverage()}");
            Console.WriteLine(Round.Medians(rows));
        }
        finally
        {
            File.Delete(onnx);
        }
    }

    private static T WithScheduler<T>(Options o, Func<ComputeScheduler, T> phase)
    {
        using var scheduler = new ComputeScheduler(o.Workers, SchedulerOptionsOf(o));
        return phase(scheduler);
    }

    /// <summary>The defaults, with what the command line overrides (the levers of the isolation runs).</summary>
    private static SchedulerOptions SchedulerOptionsOf(Options o)
    {
        var defaults = new SchedulerOptions();
        return defaults with
        {
            ReservedWorkers = o.Reserve,
            BestEffort = defaults.BestEffort with { Nice = o.BeNice },
            YieldUnitTime = TimeSpan.FromMilliseconds(o.YieldMs),
            InlineWhenIdle = o.Inline,
            LendReserve = o.Lend,
        };
    }

    private static void Warm(RankingRunner ranking, VisionRunner vision, Options o)
    {
        for (int i = 0; i < 20; i++) ranking.Once();
        float[][] batch = Enumerable.Range(0, o.BeBatch).Select(i => vision.Input(i)).ToArray();
        for (int i = 0; i < 5; i++) vision.RunBatch(batch);
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < 20; i++) ranking.Once();
        double rankMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / 20;
        t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < 5; i++) vision.RunBatch(batch);
        double beMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / 5;
        Console.WriteLine($"one ranking unit {rankMs:0.00} ms; one best-effort batch of {o.BeBatch} {beMs:0.00} ms (ranking load ~{rankMs * o.Qps / 10:0}% of one core)");
        // Load-independent: what one best-effort item costs the GC on the thread that runs its batch.
        const int Batches = 20;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Batches; i++) vision.RunBatch(batch);
        double perItem = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)(Batches * o.BeBatch);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"best-effort allocated bytes per item ({o.BePath} path, batches of {o.BeBatch}, {Batches} batches): {perItem:0}"));
    }

    /// <summary>Open loop at a fixed rate: a request is issued every 1/QPS whatever the previous ones do.</summary>
    internal static Latencies RankingPhase(RankingRunner ranking, Options o, ComputeScheduler? scheduler)
    {
        var latencies = new ConcurrentBag<double>();
        var inFlight = new List<Task>();
        long interval = Stopwatch.Frequency / o.Qps;
        long start = Stopwatch.GetTimestamp();
        long end = start + (long)(o.Seconds * Stopwatch.Frequency);
        long next = start;
        while (next < end)
        {
            next += interval;
            long wait = next - Stopwatch.GetTimestamp();
            if (wait > 0) Thread.Sleep(TimeSpan.FromSeconds(wait / (double)Stopwatch.Frequency));
            inFlight.Add(Task.Run(async () =>
            {
                long issued = Stopwatch.GetTimestamp();
                if (scheduler is null) ranking.Once();
                else
                {
                    using ComputeSlot slot = await scheduler.AcquireAsync("dlrm", WorkClass.Ranking, long.MaxValue, o.RankBatch).ConfigureAwait(false);
                    ranking.Once();
                }
                latencies.Add(Stopwatch.GetElapsedTime(issued).TotalMilliseconds);
            }));
        }
        Task.WaitAll(inFlight);
        return new Latencies([.. latencies]);
    }

    /// <summary>Closed loop: each client submits its next item as soon as the previous one returns. Items per second.</summary>
    private static double VisionPhase(VisionRunner vision, Options o, ComputeScheduler scheduler, Task? until)
    {
        BatchQueue<float[], float[]> queue = scheduler.CreateQueue<float[], float[]>("vision", WorkClass.BestEffort, new BatchLimits(o.BeBatch, TimeSpan.FromMilliseconds(2)), vision.RunBatch);
        using var stop = new CancellationTokenSource();
        long done = 0;
        long start = Stopwatch.GetTimestamp();
        Task[] clients = Enumerable.Range(0, o.BeClients).Select(c => Task.Run(async () =>
        {
            float[] input = vision.Input(c);
            while (!stop.IsCancellationRequested)
            {
                await queue.SubmitAsync(input, long.MaxValue).ConfigureAwait(false);
                Interlocked.Increment(ref done);
            }
        })).ToArray();
        if (until is null) Thread.Sleep(TimeSpan.FromSeconds(o.Seconds));
        else until.Wait();
        long counted = Interlocked.Read(ref done);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        stop.Cancel();
        Task.WaitAll(clients);
        return counted / seconds;
    }

    /// <summary>Batch 1, one caller: session.Run on the caller's thread vs the same call through a BatchQueue. Milliseconds per item.</summary>
    private static (double Bare, double Scheduled) Overhead(VisionRunner vision, Options o)
    {
        float[][] one = [vision.Input(1)];
        using var scheduler = new ComputeScheduler(o.Workers, SchedulerOptionsOf(o));
        BatchQueue<float[], float[]> queue = scheduler.CreateQueue<float[], float[]>("vision", WorkClass.BestEffort, BatchLimits.Single, vision.RunBatch);
        var bare = new List<double>();
        var scheduled = new List<double>();
        // Alternate which side goes first, so a drift in the machine's load does not favour one.
        for (int rep = 0; rep < 6; rep++)
        {
            for (int side = 0; side < 2; side++)
            {
                bool viaScheduler = (rep + side) % 2 == 1;
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < o.OverheadRuns; i++)
                {
                    if (viaScheduler) queue.SubmitAsync(one[0], long.MaxValue).GetAwaiter().GetResult();
                    else vision.RunBatch(one);
                }
                (viaScheduler ? scheduled : bare).Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds / o.OverheadRuns);
            }
        }
        return (Median(bare), Median(scheduled));
    }

    private static List<MlpLayer> BestEffortLayers(int width, int layers)
    {
        var rng = new Random(7);
        float bound = 1f / MathF.Sqrt(width);
        return Enumerable.Range(0, layers).Select(_ => new MlpLayer(width, width, Uniform(rng, width * width, bound), Uniform(rng, width, bound), Activation.Relu)).ToList();
    }

    private static float[] Uniform(Random rng, int count, float bound)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)((rng.NextDouble() * 2) - 1) * bound;
        return values;
    }

    internal static double Median(IEnumerable<double> values)
    {
        double[] v = [.. values.Order()];
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    internal sealed record Latencies(double[] Ms)
    {
        public double P50 => Percentile(0.50);
        public double P99 => Percentile(0.99);
        public double P999 => Percentile(0.999);
        public int Count => Ms.Length;

        private double Percentile(double p)
        {
            if (Ms.Length == 0) return double.NaN;
            double[] s = [.. Ms.Order()];
            return s[Math.Min(s.Length - 1, (int)Math.Ceiling(p * s.Length) - 1)];
        }
    }

    private sealed class Round
    {
        public Latencies Bare { get; init; } = null!;
        public Latencies Alone { get; set; } = null!;
        public (double PauseMs, int Gen0, int Gen1, int Gen2, double AllocatedMb) AloneGc { get; set; }
        public double VisionAlone { get; set; }
        public Latencies WithLoad { get; set; } = null!;
        public double VisionShared { get; set; }
        public (double PauseMs, int Gen0, int Gen1, int Gen2, double AllocatedMb) SharedGc { get; set; }
        public double OrtBare { get; set; }
        public double OrtScheduled { get; set; }

        public string Line(int n) => string.Create(CultureInfo.InvariantCulture,
            $"round {n}: ranking p50/p99 ms: bare {Bare.P50:0.000}/{Bare.P99:0.000}, scheduler alone {Alone.P50:0.000}/{Alone.P99:0.000}, with best effort {WithLoad.P50:0.000}/{WithLoad.P99:0.000} " +
            $"(p99 ratio {WithLoad.P99 / Alone.P99:0.00}, {WithLoad.Count} requests; GC paused: ranking alone {AloneGc.PauseMs:0.0} ms, gen0/1/2 {AloneGc.Gen0}/{AloneGc.Gen1}/{AloneGc.Gen2}, with best effort {SharedGc.PauseMs:0.0} ms, gen0/1/2 {SharedGc.Gen0}/{SharedGc.Gen1}/{SharedGc.Gen2}, {SharedGc.AllocatedMb:0} MB allocated); best effort items/s: alone {VisionAlone:0.0}, shared {VisionShared:0.0} ({VisionShared / VisionAlone:P0}); " +
            $"batch-1 ms/item: bare session.Run {OrtBare:0.000}, via scheduler {OrtScheduled:0.000} (overhead {OrtScheduled / OrtBare - 1:P1})");

        /// <summary>
        /// Per-round medians, then the same percentiles over every request of every round pooled
        /// (alone and with best effort by the same rule), so the p99 rests on rounds x QPS x seconds requests.
        /// </summary>
        public static string Medians(List<Round> rows)
        {
            var alone = new Latencies([.. rows.SelectMany(r => r.Alone.Ms)]);
            var shared = new Latencies([.. rows.SelectMany(r => r.WithLoad.Ms)]);
            var bare = new Latencies([.. rows.SelectMany(r => r.Bare.Ms)]);
            return PerRound(rows) + Environment.NewLine + string.Create(CultureInfo.InvariantCulture,
                $"pooled over {rows.Count} rounds ({alone.Count} requests alone, {shared.Count} with best effort): ranking p99 alone {alone.P99:0.000} ms, with best effort {shared.P99:0.000} ms, " +
                $"ratio {shared.P99 / alone.P99:0.00} (target <= 1.5); p99.9 alone {alone.P999:0.000} ms, with best effort {shared.P999:0.000} ms; p50 alone {alone.P50:0.000} ms, with best effort {shared.P50:0.000} ms; bare (no scheduler) p99 {bare.P99:0.000} ms; " +
                $"GC paused per phase (median): ranking alone {Median(rows.Select(r => r.AloneGc.PauseMs)):0.0} ms, with best effort {Median(rows.Select(r => r.SharedGc.PauseMs)):0.0} ms; collections with best effort, all rounds: gen1 {rows.Sum(r => r.SharedGc.Gen1)}, gen2 {rows.Sum(r => r.SharedGc.Gen2)}");
        }

        private static string PerRound(List<Round> rows) => string.Create(CultureInfo.InvariantCulture,
            $"medians over {rows.Count} rounds: ranking p99 alone {Median(rows.Select(r => r.Alone.P99)):0.000} ms, with best effort {Median(rows.Select(r => r.WithLoad.P99)):0.000} ms, " +
            $"ratio {Median(rows.Select(r => r.WithLoad.P99 / r.Alone.P99)):0.00} (target <= 1.5); ranking p50 alone {Median(rows.Select(r => r.Alone.P50)):0.000} ms, with best effort {Median(rows.Select(r => r.WithLoad.P50)):0.000} ms; " +
            $"bare (no scheduler) p99 {Median(rows.Select(r => r.Bare.P99)):0.000} ms; " +
            $"best effort shared/alone {Median(rows.Select(r => r.VisionShared / r.VisionAlone)):P0} (target >= 50%); " +
            $"batch-1 overhead {Median(rows.Select(r => r.OrtScheduled / r.OrtBare - 1)):P1} (target <= 5%)");
    }

    /// <summary>GC pauses over a phase: every pause stops ranking's thread too, whatever the scheduler does.</summary>
    private readonly record struct GcPause(TimeSpan Pause, int Gen0, int Gen1, int Gen2, long Allocated)
    {
        public static GcPause Start() => new(GC.GetTotalPauseDuration(), GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalAllocatedBytes());

        public (double PauseMs, int Gen0, int Gen1, int Gen2, double AllocatedMb) Stop() =>
            ((GC.GetTotalPauseDuration() - Pause).TotalMilliseconds, GC.CollectionCount(0) - Gen0, GC.CollectionCount(1) - Gen1, GC.CollectionCount(2) - Gen2, (GC.GetTotalAllocatedBytes() - Allocated) / 1e6);
    }

    /// <summary>Ranking's dense work: bottom and top MLPs at a fixed batch; one instance per concurrent request.</summary>
    internal sealed class RankingRunner(int batch)
    {
        private readonly ConcurrentBag<(GemmMlp Bottom, GemmMlp Top)> _free = [];
        private readonly float[] _dense = GemmMlp.Input(batch, GemmMlp.Bottom[0]);
        private readonly float[] _interaction = GemmMlp.Input(batch, GemmMlp.Top[0]);

        public void Once()
        {
            if (!_free.TryTake(out var mlps)) mlps = (new GemmMlp("bottom", batch), new GemmMlp("top", batch));
            mlps.Bottom.Forward(_dense, batch, 1);
            mlps.Top.Forward(_interaction, batch, 1);
            _free.Add(mlps);
        }
    }

    /// <summary>
    /// The best-effort model, one batch at a time, by --be-path: "served" through OnnxGraph.RunBatch
    /// (what a vision batch runs in the server: one GraphRequest per item, the batch stacked into
    /// rented arrays, each item's rows copied out of ONNX Runtime's output); "alloc" the bench's own
    /// session.Run over [n, width] tensors allocated per batch (128 KB each at batch 32: large-object
    /// heap, so gen-2 collections that pause ranking too); "pooled" the same tensors rented.
    /// </summary>
    private sealed class VisionRunner : IDisposable
    {
        private static readonly string[] InputNames = ["x"];
        private static readonly string[] OutputNames = ["y"];

        private readonly string _path;
        private readonly int _width;
        private readonly InferenceSession[] _sessions = [];
        private readonly OnnxGraph[] _graphs = [];
        private readonly ConcurrentBag<InferenceSession> _freeSessions = [];
        private readonly ConcurrentBag<OnnxGraph> _freeGraphs = [];

        public VisionRunner(string onnx, int sessions, int width, string path)
        {
            _path = path;
            _width = width;
            // One session per concurrent batch when there are several (--be-sessions).
            if (path == "served")
            {
                _graphs = [.. Enumerable.Range(0, sessions).Select(_ => new OnnxGraph(onnx))];
                if (!_graphs[0].Batchable) throw new InvalidOperationException($"{onnx} is not batchable; the served path would run item by item");
                foreach (OnnxGraph g in _graphs) _freeGraphs.Add(g);
            }
            else
            {
                _sessions = [.. Enumerable.Range(0, sessions).Select(_ => OrtSessions.Open(onnx))];
                foreach (InferenceSession session in _sessions) _freeSessions.Add(session);
            }
        }

        public float[] Input(int seed) => Uniform(new Random(seed), _width, 1f);

        public float[][] RunBatch(IReadOnlyList<float[]> items) => _path == "served" ? Served(items) : Direct(items, pooled: _path == "pooled");

        private float[][] Served(IReadOnlyList<float[]> items)
        {
            int n = items.Count;
            var requests = new GraphRequest[n];
            for (int i = 0; i < n; i++) requests[i] = new GraphRequest(new Dictionary<string, HostTensor>(1, StringComparer.Ordinal) { ["x"] = HostTensor.Of(items[i], 1, _width) });
            bool borrowed = _freeGraphs.TryTake(out OnnxGraph? graph);
            graph ??= _graphs[0];
            GraphOutcome[] outcomes;
            try
            {
                outcomes = graph.RunBatch(requests);
            }
            finally
            {
                if (borrowed) _freeGraphs.Add(graph);
            }
            var results = new float[n][];
            for (int i = 0; i < n; i++) results[i] = outcomes[i].Get()["y"].Floats;
            return results;
        }

        private float[][] Direct(IReadOnlyList<float[]> items, bool pooled)
        {
            int n = items.Count, width = _width;
            float[] x = pooled ? ArrayPool<float>.Shared.Rent(n * width) : new float[n * width];
            float[] y = pooled ? ArrayPool<float>.Shared.Rent(n * width) : new float[n * width];
            for (int i = 0; i < n; i++) items[i].CopyTo(x, i * width);
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, x.AsMemory(0, n * width), [n, width]);
            using var output = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, y.AsMemory(0, n * width), [n, width]);
            using var run = new RunOptions();
            bool borrowed = _freeSessions.TryTake(out InferenceSession? session);
            session ??= _sessions[0];
            try
            {
                session.Run(run, InputNames, [input], OutputNames, [output]);
            }
            finally
            {
                if (borrowed) _freeSessions.Add(session);
            }
            var results = new float[n][];
            for (int i = 0; i < n; i++) results[i] = y.AsSpan(i * width, width).ToArray();
            if (pooled)
            {
                ArrayPool<float>.Shared.Return(x);
                ArrayPool<float>.Shared.Return(y);
            }
            return results;
        }

        public void Dispose()
        {
            foreach (InferenceSession session in _sessions) session.Dispose();
            foreach (OnnxGraph graph in _graphs) graph.Dispose();
        }
    }

    internal sealed record Options(int Workers, int Qps, int RankBatch, int BeWidth, int BeLayers, int BeBatch, int BeClients, double Seconds, int Rounds, int OverheadRuns, int Reserve, int BeSessions)
    {
        public int BeNice { get; init; } = new SchedulerOptions().BestEffort.Nice;
        public double YieldMs { get; init; } = new SchedulerOptions().YieldUnitTime.TotalMilliseconds;
        public bool Inline { get; init; } = new SchedulerOptions().InlineWhenIdle;
        public bool Lend { get; init; } = new SchedulerOptions().LendReserve;
        public string BePath { get; init; } = "served";
        public GCLatencyMode? GcLatency { get; init; }

        public static Options Parse(string[] args)
        {
            var o = new Options(Workers: 2, Qps: 100, RankBatch: 64, BeWidth: 1024, BeLayers: 8, BeBatch: 32, BeClients: 64, Seconds: 8, Rounds: 3, OverheadRuns: 200, Reserve: 1, BeSessions: 1);
            for (int i = 0; i < args.Length; i += 2)
            {
                if (i + 1 >= args.Length) throw new ArgumentException($"option {args[i]} needs a value");
                string v = args[i + 1];
                o = args[i] switch
                {
                    "--workers" => o with { Workers = Int(args[i], v) },
                    "--qps" => o with { Qps = Int(args[i], v) },
                    "--rank-batch" => o with { RankBatch = Int(args[i], v) },
                    "--be-width" => o with { BeWidth = Int(args[i], v) },
                    "--be-layers" => o with { BeLayers = Int(args[i], v) },
                    "--be-batch" => o with { BeBatch = Int(args[i], v) },
                    "--be-clients" => o with { BeClients = Int(args[i], v) },
                    "--seconds" => o with { Seconds = double.Parse(v, CultureInfo.InvariantCulture) },
                    "--rounds" => o with { Rounds = Int(args[i], v) },
                    "--overhead-runs" => o with { OverheadRuns = Int(args[i], v) },
                    "--be-sessions" => o with { BeSessions = Int(args[i], v) },
                    "--reserve" => o with { Reserve = int.Parse(v, NumberStyles.None, CultureInfo.InvariantCulture) },
                    "--be-nice" => o with { BeNice = int.Parse(v, NumberStyles.None, CultureInfo.InvariantCulture) },
                    "--yield-ms" => o with { YieldMs = double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture) },
                    "--inline" => o with { Inline = Flag(args[i], v) },
                    "--lend" => o with { Lend = Flag(args[i], v) },
                    "--be-path" => o with { BePath = v is "served" or "alloc" or "pooled" ? v : throw new ArgumentException($"--be-path must be served, alloc or pooled (got '{v}')") },
                    // The earlier flag: 1 is the runner with rented tensors, 0 the allocating one.
                    "--be-pool" => o with { BePath = Flag(args[i], v) ? "pooled" : "alloc" },
                    "--gc-latency" => o with { GcLatency = v switch
                    {
                        "sustained" => GCLatencyMode.SustainedLowLatency,
                        "interactive" => GCLatencyMode.Interactive,
                        "batch" => GCLatencyMode.Batch,
                        _ => throw new ArgumentException($"--gc-latency must be sustained, interactive or batch (got '{v}')"),
                    } },
                    _ => throw new ArgumentException($"unknown option {args[i]} (--workers --qps --rank-batch --be-width --be-layers --be-batch --be-clients --seconds --rounds --overhead-runs --reserve --be-sessions --be-nice --yield-ms --inline --lend --be-path --be-pool --gc-latency)"),
                };
            }
            return o;
        }

        private static bool Flag(string name, string v) => v switch
        {
            "1" => true,
            "0" => false,
            _ => throw new ArgumentException($"{name} must be 0 or 1 (got '{v}')"),
        };

        private static int Int(string name, string v) =>
            int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : throw new ArgumentException($"{name} must be a positive integer (got '{v}')");
    }
}
