using System.Diagnostics;
using System.Globalization;
using Recsys.DenseCompute.Gemm;

namespace Recsys.Benchmarks;

/// <summary>
/// Where a multi-threaded MLP call spends its time: every parallel layer's publish, the worker's
/// first sight of it, each chunk on each thread and the caller's join, then the same chunks run
/// by the caller alone (the worker claims nothing) for the 1-thread time of the same work.
/// Usage: gemm-trace [mlp=top] [batches=1,16,64] [calls=2000] [threads=2] [panelChunksPerThread=8]
/// (a list of panel chunk counts, e.g. 1,8, compares the fp32 split settings in one run).
/// </summary>
internal static class GemmTrace
{
    public static void Run(string[] args)
    {
        string name = args.Length > 0 ? args[0] : "top";
        int[] batches = args.Length > 1 ? args[1].Split(',').Select(int.Parse).ToArray() : [1, 16, 64];
        int calls = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2000;
        int threads = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 2;
        int[] panelChunks = args.Length > 4 ? args[4].Split(',').Select(int.Parse).ToArray() : [GemmWorkers.PanelChunksPerThread];

        Console.WriteLine(ApplySettings());
        Console.WriteLine($"# gemm-trace {name}, {threads} threads, {calls} calls per batch; load average {GemmCompare.LoadAverage()}");
        Console.WriteLine("| panel chunks / thread | batch | layer | chunks | call us | caller chunk us (2t) | worker chunk us (2t) | same chunk alone us | worker saw publish after us (med / min) | worker slept % | worker ran no chunk % | worker on the caller's vCPU % | join wait us | caller serial before publish us | Forward us (2t / caller alone) | chunks on the same vCPU as last call % |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (int m in batches)
        {
            foreach (int perThread in panelChunks) Batch(name, m, threads, calls, perThread);
        }
    }

    private static void Batch(string name, int m, int threads, int calls, int panelChunksPerThread)
    {
        GemmWorkers.PanelChunksPerThread = panelChunksPerThread;
        var mlp = new GemmMlp(name, m);
        float[] input = GemmMlp.Input(m, mlp.Dims[0]);
        int[] parallel = Enumerable.Range(0, mlp.Dims.Length - 1)
            .Where(l => (long)m * mlp.Dims[l] * mlp.Dims[l + 1] >= GemmLayout.ParallelThreshold).ToArray();
        if (parallel.Length == 0) return;

        for (int i = 0; i < 200; i++) mlp.Forward(input, m, threads);
        (ChunkTrace shared, double[] sharedForward) = Record(mlp, input, m, threads, calls, parallel.Length, callerOnly: false);
        (ChunkTrace alone, double[] aloneForward) = Record(mlp, input, m, threads, calls, parallel.Length, callerOnly: true);
        for (int p = 0; p < parallel.Length; p++)
        {
            string forward = p == 0 ? FormattableString.Invariant($"{Median(sharedForward):F1} / {Median(aloneForward):F1}") : "";
            Console.WriteLine($"| {panelChunksPerThread} " + Row(m, mlp, parallel[p], p, parallel.Length, shared, alone, forward));
        }
    }

    /// <summary>
    /// Worker settings to try without a rebuild: GEMM_SPIN_US (poll time before sleeping), GEMM_SPIN_ITERATIONS
    /// (pauses per poll), GEMM_IDLE_POLL (pause|yield|yieldOnCallersCore|moveOffCallersCore), GEMM_PANEL_CHUNKS (panel chunks per thread). Returns them as a comment line.
    /// </summary>
    internal static string ApplySettings()
    {
        if (Environment.GetEnvironmentVariable("GEMM_SPIN_US") is { } spinUs) ChunkWorkers.SpinTicks = (long)(double.Parse(spinUs, CultureInfo.InvariantCulture) * Stopwatch.Frequency / 1e6);
        if (Environment.GetEnvironmentVariable("GEMM_SPIN_ITERATIONS") is { } spins) ChunkWorkers.SpinIterations = int.Parse(spins, CultureInfo.InvariantCulture);
        if (Environment.GetEnvironmentVariable("GEMM_IDLE_POLL") is { } poll) ChunkWorkers.Poll = Enum.Parse<ChunkWorkers.IdlePoll>(poll, ignoreCase: true);
        if (Environment.GetEnvironmentVariable("GEMM_PANEL_CHUNKS") is { } chunks) GemmWorkers.PanelChunksPerThread = int.Parse(chunks, CultureInfo.InvariantCulture);
        return FormattableString.Invariant($"# workers: spin {ChunkTrace.Microseconds(ChunkWorkers.SpinTicks):F0} us, {ChunkWorkers.SpinIterations} pauses per poll, idle poll {ChunkWorkers.Poll}, {GemmWorkers.PanelChunksPerThread} panel chunks per thread");
    }

    private static (ChunkTrace Trace, double[] ForwardUs) Record(GemmMlp mlp, float[] input, int m, int threads, int calls, int layers, bool callerOnly)
    {
        var trace = new ChunkTrace(calls * layers, calls * layers * 8) { CallerOnly = callerOnly };
        var forward = new double[calls];
        GemmWorkers.Pool.Trace = trace;
        try
        {
            for (int i = 0; i < calls; i++)
            {
                long start = Stopwatch.GetTimestamp();
                mlp.Forward(input, m, threads);
                forward[i] = ChunkTrace.Microseconds(Stopwatch.GetTimestamp() - start);
            }
        }
        finally
        {
            GemmWorkers.Pool.Trace = null;
        }

        if (trace.Calls.Length != calls * layers) throw new InvalidOperationException($"traced {trace.Calls.Length} parallel layer calls, expected {calls} x {layers}");
        return (trace, forward);
    }

    private static string Row(int m, GemmMlp mlp, int layer, int position, int layers, ChunkTrace shared, ChunkTrace alone, string forward)
    {
        ReadOnlySpan<ChunkTrace.CallRecord> calls = shared.Calls;
        var callUs = new List<double>();
        var handoff = new List<double>();
        var join = new List<double>();
        var serial = new List<double>();
        int slept = 0, idle = 0, chunks = 0, sharedCpu = 0, sawCount = 0;
        for (int c = position; c < calls.Length; c += layers)
        {
            ChunkTrace.CallRecord call = calls[c];
            chunks = call.Chunks;
            callUs.Add(ChunkTrace.Microseconds(call.Joined - call.Publish));
            join.Add(ChunkTrace.Microseconds(call.Joined - call.CallerDone));
            if (call.WorkerSaw != 0)
            {
                handoff.Add(ChunkTrace.Microseconds(call.WorkerSaw - call.Publish));
                sawCount++;
                if (call.WorkerCpu == call.CallerCpu) sharedCpu++;
            }

            if (call.WorkerSlept) slept++;
            if (position > 0) serial.Add(ChunkTrace.Microseconds(call.Publish - calls[c - 1].Joined));
        }

        var callerChunk = new List<double>();
        var workerChunk = new List<double>();
        var workerRan = new HashSet<int>();
        int sameCpu = 0, cpuSeen = 0;
        var lastCpu = new Dictionary<int, int>();
        foreach (ChunkTrace.ChunkRecord r in shared.Chunks)
        {
            if (r.Call % layers != position) continue;
            (r.Thread == 0 ? callerChunk : workerChunk).Add(ChunkTrace.Microseconds(r.End - r.Start));
            if (r.Thread != 0) workerRan.Add(r.Call);
            if (lastCpu.TryGetValue(r.Chunk, out int cpu))
            {
                cpuSeen++;
                if (cpu == r.Cpu) sameCpu++;
            }

            lastCpu[r.Chunk] = r.Cpu;
        }

        int layerCalls = callUs.Count;
        idle = layerCalls - workerRan.Count;
        var aloneChunk = new List<double>();
        foreach (ChunkTrace.ChunkRecord r in alone.Chunks)
        {
            if (r.Call % layers == position) aloneChunk.Add(ChunkTrace.Microseconds(r.End - r.Start));
        }

        return FormattableString.Invariant(
            $"| {m} | {mlp.Dims[layer]}x{mlp.Dims[layer + 1]} | {chunks} | {Median(callUs):F1} | {Median(callerChunk):F1} | {Median(workerChunk):F1} | {Median(aloneChunk):F1} | {Median(handoff):F1} / {Min(handoff):F1} | {100.0 * slept / layerCalls:F0} | {100.0 * idle / layerCalls:F0} | {(sawCount > 0 ? 100.0 * sharedCpu / sawCount : double.NaN):F0} | {Median(join):F1} | {(serial.Count > 0 ? Median(serial).ToString("F1", CultureInfo.InvariantCulture) : "-")} | {forward} | {(cpuSeen > 0 ? 100.0 * sameCpu / cpuSeen : double.NaN):F0} |");
    }

    private static double Median(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0) return double.NaN;
        double[] sorted = values.ToArray();
        Array.Sort(sorted);
        return sorted[sorted.Length / 2];
    }

    private static double Min(IReadOnlyCollection<double> values) => values.Count == 0 ? double.NaN : values.Min();
}
