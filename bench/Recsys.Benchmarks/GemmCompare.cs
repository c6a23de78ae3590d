using System.Diagnostics;

namespace Recsys.Benchmarks;

/// <summary>
/// Plain console comparison of our MLP against ONNX Runtime on the same weights:
/// ours and ORT alternate block by block so both see the same machine noise.
/// Usage: dotnet run -c Release --project bench/Recsys.Benchmarks -- gemm-compare [rounds=7] [mlp=bottom,top] [batches=1,16,64,256,1024] [threads=1,2]
/// </summary>
internal static class GemmCompare
{
    public static void Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 7;
        string[] mlps = args.Length > 2 ? args[2].Split(',') : ["bottom", "top"];
        int[] batches = args.Length > 3 ? args[3].Split(',').Select(int.Parse).ToArray() : [1, 16, 64, 256, 1024];
        int[] threadCounts = args.Length > 4 ? args[4].Split(',').Select(int.Parse).ToArray() : [1, 2];

        Console.WriteLine(GemmTrace.ApplySettings());
        Console.WriteLine($"# GEMM path {Recsys.DenseCompute.Gemm.GemmPaths.Best}, {Environment.ProcessorCount} cpus, {rounds} rounds of ~0.1 s per side");
        Console.WriteLine($"# load average at start: {LoadAverage()}");
        Console.WriteLine("| MLP | batch | threads | ours us (block med [min-max]) | ORT us (block med [min-max]) | ORT/ours (block med [min-max]) | ours / ORT fastest call us | ORT/ours (fastest call) | ours GFLOP/s (med) | max abs diff |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (int threads in threadCounts)
        {
            foreach (string name in mlps)
            {
                var mlp = new GemmMlp(name, batches.Max());
                foreach (int m in batches)
                {
                    float[] input = GemmMlp.Input(m, mlp.Dims[0]);
                    using var ort = new OrtMlpRunner(mlp, threads, input, m);
                    Action ours = () => mlp.Forward(input, m, threads);
                    Action peer = ort.Run;
                    ours();
                    peer();
                    float diff = 0;
                    ReadOnlySpan<float> y = mlp.Forward(input, m, threads);
                    for (int i = 0; i < y.Length; i++) diff = MathF.Max(diff, MathF.Abs(y[i] - ort.Output[i]));

                    long oursIters = Calibrate(ours), peerIters = Calibrate(peer);
                    var oursTimes = new double[rounds];
                    var peerTimes = new double[rounds];
                    var ratios = new double[rounds];
                    double oursFastest = double.MaxValue, peerFastest = double.MaxValue;
                    for (int r = 0; r < rounds; r++)
                    {
                        Settle();
                        oursTimes[r] = Block(ours, oursIters, ref oursFastest);
                        Settle();
                        peerTimes[r] = Block(peer, peerIters, ref peerFastest);
                        ratios[r] = peerTimes[r] / oursTimes[r];
                    }

                    Array.Sort(oursTimes);
                    Array.Sort(peerTimes);
                    Array.Sort(ratios);
                    double med = oursTimes[rounds / 2];
                    Console.WriteLine(
                        FormattableString.Invariant($"| {name} | {m} | {threads} | {Us(oursTimes)} | {Us(peerTimes)} | {ratios[rounds / 2]:F2} [{ratios[0]:F2}-{ratios[^1]:F2}] | {oursFastest * 1e6:F1} / {peerFastest * 1e6:F1} | {peerFastest / oursFastest:F2} | {mlp.Flops(m) / med / 1e9:F0} | {diff:E1} |"));
                }
            }
        }
    }

    /// <summary>
    /// GEMM_COMPARE_SETTLE_MS (default 0): a pause before each block so the side that ran last has
    /// parked its idle threads. Without it, 2-thread blocks start while the other engine's pool still
    /// spins (ORT's for far longer than our 100 us), and the spinner takes a vCPU from the side measured.
    /// </summary>
    private static readonly int s_settleMs = int.TryParse(Environment.GetEnvironmentVariable("GEMM_COMPARE_SETTLE_MS"), out int ms) ? ms : 0;

    private static void Settle()
    {
        if (s_settleMs > 0) Thread.Sleep(s_settleMs);
    }

    private static string Us(double[] sorted) =>
        FormattableString.Invariant($"{sorted[sorted.Length / 2] * 1e6:F1} [{sorted[0] * 1e6:F1}-{sorted[^1] * 1e6:F1}]");

    private static long Calibrate(Action f)
    {
        for (int i = 0; i < 20; i++) f();
        var sw = Stopwatch.StartNew();
        long n = 0;
        while (sw.Elapsed.TotalSeconds < 0.05)
        {
            f();
            n++;
        }

        return Math.Max(1, (long)(n * 0.1 / sw.Elapsed.TotalSeconds));
    }

    /// <summary>Mean seconds per call over the block; also lowers <paramref name="fastest"/> to the quickest single call.</summary>
    internal static double Block(Action f, long iterations, ref double fastest)
    {
        long start = Stopwatch.GetTimestamp(), previous = start;
        long best = long.MaxValue;
        for (long i = 0; i < iterations; i++)
        {
            f();
            long now = Stopwatch.GetTimestamp();
            best = Math.Min(best, now - previous);
            previous = now;
        }

        fastest = Math.Min(fastest, (double)best / Stopwatch.Frequency);
        return (double)(previous - start) / Stopwatch.Frequency / iterations;
    }

    internal static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";
}
