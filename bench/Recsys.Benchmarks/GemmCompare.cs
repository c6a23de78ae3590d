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

        Console.WriteLine($"# GEMM path {Recsys.DenseCompute.Gemm.GemmPaths.Best}, {Environment.ProcessorCount} cpus, {rounds} rounds of ~0.1 s per side");
        Console.WriteLine("| MLP | batch | threads | ours us (med [min-max]) | ORT us (med [min-max]) | ORT/ours speed ratio (med) | ours GFLOP/s | max abs diff |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
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
                    for (int r = 0; r < rounds; r++)
                    {
                        oursTimes[r] = Block(ours, oursIters);
                        peerTimes[r] = Block(peer, peerIters);
                        ratios[r] = peerTimes[r] / oursTimes[r];
                    }

                    Array.Sort(oursTimes);
                    Array.Sort(peerTimes);
                    Array.Sort(ratios);
                    double med = oursTimes[rounds / 2];
                    Console.WriteLine(
                        $"| {name} | {m} | {threads} | {Us(oursTimes)} | {Us(peerTimes)} | {ratios[rounds / 2]:F2} [{ratios[0]:F2}-{ratios[^1]:F2}] | {mlp.Flops(m) / med / 1e9:F0} | {diff:E1} |");
                }
            }
        }
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

    private static double Block(Action f, long iterations)
    {
        var sw = Stopwatch.StartNew();
        for (long i = 0; i < iterations; i++) f();
        return sw.Elapsed.TotalSeconds / iterations;
    }
}
