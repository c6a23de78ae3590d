using Microsoft.ML.OnnxRuntime;
using System.Diagnostics;
using System.Globalization;
using Recsys.DenseCompute.Gemm;
using Recsys.DenseCompute.Quantized;

namespace Recsys.Benchmarks;

/// <summary>
/// Reduced-precision Linear layers against our fp32 kernel on the top-MLP shapes of BASELINES.md, on 1 or 2 threads
/// (every variant, ORT included, gets the same thread count).
/// Every variant runs one timed block per round, interleaved, so all see the same machine noise; the
/// ratio is taken per round (fp32 time / variant time) and the median reported. The whole top MLP is
/// also timed at each precision next to ONNX Runtime fp32 (the peer GemmCompare uses; it has no OpenBLAS call).
/// Usage: dotnet run -c Release --project bench/Recsys.Benchmarks -- qgemm-compare [rounds=5] [batches=1,16,64,256] [weights=uniform|heavy] [threads=1] [warm|cold[:copies]]
/// "cold" times the whole MLP only, each call on the next of <c>copies</c> (default 32) separately packed copies of it,
/// for every variant and for ORT (one session per copy): 32 copies of the int8 MLP are 70 MB, so every variant's
/// weights stream from DRAM as in a server whose embedding lookups push the MLP out of the 32 MB L3 between dense calls.
/// "warm" (the default) reuses one copy, whose weights stay in L3.
/// "heavy" gives the per-layer table Student-t-like weights of the same spread (trained layers look like that:
/// a bulk near 0 and a few large values), where the 16-bit chunk needs far fewer outliers; the whole-MLP
/// table keeps the uniform weights ORT is given.
/// </summary>
internal static class QuantizedGemmCompare
{
    private static readonly string[] Variants = ["fp32", "fp16", "int8-vnni", "int8-madd16"];

    public static void Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
        int[] batches = args.Length > 2 ? args[2].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray() : [1, 16, 64, 256];
        bool heavy = args.Length > 3 && args[3] == "heavy";
        int threads = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1;
        int copies = args.Length > 5 ? ColdCopies(args[5]) : 1;
        var mlp = new GemmMlp("top", batches.Max());
        if (copies > 1)
        {
            RunCold(mlp, rounds, batches, threads, copies);
            return;
        }

        Console.WriteLine($"# qgemm-compare ({(heavy ? "heavy-tailed" : "uniform")} weights per layer): {Environment.ProcessorCount} cpus, {threads} thread(s), {rounds} interleaved rounds of ~0.1 s per variant; times are the fastest single call, x = fp32 / variant; fp32 path {GemmPaths.Best}");
        Console.WriteLine($"# load average at start: {GemmCompare.LoadAverage()}");
        Console.WriteLine("| shape (in->out) | M | fp32 us (fastest) | fp16 us | int8 vnni us | int8 madd16 us | fp16 x | vnni x | madd16 x | block-median x (fp16/vnni/madd16) | madd16 chunk / outliers | madd16 chunk-2 x (outliers) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");

        for (int l = 0; l < mlp.Layers.Count; l++)
        {
            MlpLayer layer = heavy ? HeavyTailed(mlp.Layers[l], l) : mlp.Layers[l];
            bool nonNegative = l > 0; // every top layer but the first reads a ReLU output
            IDenseLayer[] layers = Build(layer, nonNegative);
            var madd = (PackedLinearInt8)layers[3];
            var madd2 = (PackedLinearInt8)layers[4];
            foreach (int m in batches)
            {
                float[] x = GemmMlp.Input(m, layer.In);
                if (nonNegative) x = x.Select(MathF.Abs).ToArray();
                float[] y = new float[m * layer.Out];
                Action[] runs = layers.Select(d => (Action)(() => d.Forward(x, m, y, threads))).ToArray();
                (double[] med, double[] ratio) = Measure(runs, rounds);
                Console.WriteLine(FormattableString.Invariant(
                    $"| {layer.In}->{layer.Out} | {m} | {med[0]:F1} | {med[1]:F1} | {med[2]:F1} | {med[3]:F1} | {ratio[1]:F2} | {ratio[2]:F2} | {ratio[3]:F2} | {Blocks()} | {madd.Chunk} / {madd.OutlierDensity:P2} | {ratio[4]:F2} ({madd2.OutlierDensity:P2}) |"));
            }
        }

        if (heavy)
        {
            Console.WriteLine($"# load average at end: {GemmCompare.LoadAverage()}");
            return;
        }

        Console.WriteLine();
        Console.WriteLine("| whole top MLP | M | fp32 us (fastest) | fp16 us | int8 vnni us | int8 madd16 us | ORT fp32 us | fp16 x | vnni x | madd16 x | ORT/ours-fp32 | block-median x (fp16/vnni/madd16) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        IDenseLayer[][] chains = Enumerable.Range(0, Variants.Length).Select(v => mlp.Layers.Select((layer, i) => Build(layer, i > 0)[v]).ToArray()).ToArray();
        // Whole-MLP columns: fp32, fp16, vnni, madd16 (auto chunk), then ORT.
        int widest = mlp.Dims.Max();
        foreach (int m in batches)
        {
            float[] x = GemmMlp.Input(m, mlp.Dims[0]);
            float[] a = new float[m * widest], b = new float[m * widest];
            using var ort = new OrtMlpRunner(mlp, threads, x, m);
            var runs = new List<Action>();
            foreach (IDenseLayer[] chain in chains) runs.Add(() => Chain(chain, x, m, a, b, threads));
            runs.Add(ort.Run);
            (double[] med, double[] ratio) = Measure([.. runs], rounds);
            Console.WriteLine(FormattableString.Invariant(
                $"| 479-1024-1024-512-256-1 | {m} | {med[0]:F1} | {med[1]:F1} | {med[2]:F1} | {med[3]:F1} | {med[4]:F1} | {ratio[1]:F2} | {ratio[2]:F2} | {ratio[3]:F2} | {1 / ratio[4]:F2} | {Blocks()} |"));
        }

        Console.WriteLine($"# load average at end: {GemmCompare.LoadAverage()}");
    }

    private static int ColdCopies(string regime) => regime switch
    {
        "warm" => 1,
        "cold" => 32,
        _ when regime.StartsWith("cold:", StringComparison.Ordinal) && int.TryParse(regime.AsSpan(5), CultureInfo.InvariantCulture, out int n) && n >= 2 => n,
        _ => throw new ArgumentException($"regime '{regime}': expected warm, cold or cold:N with N >= 2 copies", nameof(regime)),
    };

    /// <summary>The whole MLP at every precision and ORT, each call on the next of <paramref name="copies"/> copies.</summary>
    private static void RunCold(GemmMlp mlp, int rounds, int[] batches, int threads, int copies)
    {
        // Every copy is packed on its own, so no two share weight memory; the layers' contents are the same.
        IDenseLayer[][][] chains = [.. Enumerable.Range(0, Variants.Length).Select(v =>
            Enumerable.Range(0, copies).Select(_ => mlp.Layers.Select((layer, i) => Pack(layer, i > 0, v)).ToArray()).ToArray())];
        double[] megabytes = [.. chains.Select(c => c[0].Sum(WeightBytes) * copies / 1e6)];
        Console.WriteLine(FormattableString.Invariant(
            $"# cold weights: {copies} copies, {megabytes[0]:F0} MB fp32 / {megabytes[1]:F0} MB fp16 / {megabytes[2]:F0} MB int8 vnni / {megabytes[3]:F0} MB int8 madd16 in all (ORT: {copies} sessions of the fp32 weights sharing one {threads}-thread pool)"));
        Console.WriteLine("| whole top MLP, cold | M | fp32 us (fastest) | fp16 us | int8 vnni us | int8 madd16 us | ORT fp32 us | fp16 x | vnni x | madd16 x | ORT/ours-fp32 | block-median x (fp16/vnni/madd16) | block-median ORT/ours-fp32 |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        int widest = mlp.Dims.Max();
        foreach (int m in batches)
        {
            float[] x = GemmMlp.Input(m, mlp.Dims[0]);
            float[] a = new float[m * widest], b = new float[m * widest];
            OrtMlpRunner[] orts = [.. Enumerable.Range(0, copies).Select(_ => OrtMlpRunner.OnGlobalPool(mlp, threads, x, m))];
            try
            {
                var runs = new List<Action>();
                foreach (IDenseLayer[][] copiesOfChain in chains)
                {
                    int next = 0;
                    runs.Add(() => Chain(copiesOfChain[next++ % copies], x, m, a, b, threads));
                }

                int nextOrt = 0;
                runs.Add(() => orts[nextOrt++ % copies].Run());
                (double[] med, double[] ratio) = Measure([.. runs], rounds);
                Console.WriteLine(FormattableString.Invariant(
                    $"| 479-1024-1024-512-256-1 | {m} | {med[0]:F1} | {med[1]:F1} | {med[2]:F1} | {med[3]:F1} | {med[4]:F1} | {ratio[1]:F2} | {ratio[2]:F2} | {ratio[3]:F2} | {1 / ratio[4]:F2} | {Blocks()} | {1 / LastBlockRatios[4]:F2} |"));
            }
            finally
            {
                foreach (OrtMlpRunner ort in orts) ort.Dispose();
            }
        }

        Console.WriteLine($"# load average at end: {GemmCompare.LoadAverage()}");
    }

    private static long WeightBytes(IDenseLayer layer) => layer switch
    {
        // PackedLinear keeps K x 32 floats per panel (the last panel padded).
        Fp32Layer f => (long)GemmLayout.PanelCount(f.OutFeatures) * f.InFeatures * GemmLayout.PanelWidth * sizeof(float),
        PackedLinearF16 h => h.WeightBytes,
        PackedLinearInt8 q => q.WeightBytes,
        _ => throw new ArgumentException($"no weight size for {layer.GetType().Name}", nameof(layer)),
    };

    /// <summary>The layer with Student-t-like weights (normal / a random spread), scaled to the uniform init's bound.</summary>
    private static MlpLayer HeavyTailed(MlpLayer l, int seed)
    {
        var rng = new Random(seed + 17);
        var w = new float[l.Weight.Length];
        float bound = 1f / MathF.Sqrt(l.In);
        for (int i = 0; i < w.Length; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            double normal = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            w[i] = (float)(normal / (0.5 + (rng.NextDouble() * rng.NextDouble() * 4)) * bound * 0.3);
        }

        return l with { Weight = w };
    }

    private static string Blocks() =>
        FormattableString.Invariant($"{LastBlockRatios[1]:F2} / {LastBlockRatios[2]:F2} / {LastBlockRatios[3]:F2}");

    private static IDenseLayer[] Build(MlpLayer l, bool nonNegative) => [.. Enumerable.Range(0, Variants.Length + 1).Select(v => Pack(l, nonNegative, v))];

    /// <summary>Variant v of the layer: fp32, fp16, int8 vnni, int8 madd16 (auto chunk), int8 madd16 chunk 2.</summary>
    private static IDenseLayer Pack(MlpLayer l, bool nonNegative, int variant) => variant switch
    {
        0 => new Fp32Layer(PackedLinear.Pack(l.Weight, l.Bias, l.Out, l.In, l.Activation)),
        1 => PackedLinearF16.Pack(l.Weight, l.Bias, l.Out, l.In, l.Activation),
        2 => PackedLinearInt8.Pack(l.Weight, l.Bias, l.Out, l.In, l.Activation, new Int8Options { Kernel = Int8Kernel.Vnni, InputNonNegative = nonNegative }),
        3 => PackedLinearInt8.Pack(l.Weight, l.Bias, l.Out, l.In, l.Activation, new Int8Options { Kernel = Int8Kernel.Madd16, InputNonNegative = nonNegative }),
        // Two groups (8 k) per 16-bit chunk, forced: the outliers it needs to stay exact cost what they cost.
        4 => PackedLinearInt8.Pack(l.Weight, l.Bias, l.Out, l.In, l.Activation, new Int8Options { Kernel = Int8Kernel.Madd16, Madd16Chunk = 2, InputNonNegative = nonNegative }),
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, "variants are 0..4"),
    };

    private static void Chain(IDenseLayer[] chain, float[] x, int m, float[] a, float[] b, int threads)
    {
        ReadOnlySpan<float> input = x;
        for (int i = 0; i < chain.Length; i++)
        {
            float[] y = i % 2 == 0 ? a : b;
            chain[i].Forward(input, m, y, threads);
            input = y.AsSpan(0, m * chain[i].OutFeatures);
        }
    }

    /// <summary>
    /// Per variant: the fastest single call (us) and the fastest-call ratio of variant 0 to it. On a machine
    /// shared by many processes a block mean mostly measures preemption; the fastest of thousands of calls is
    /// a call that ran without losing its core, the figure a quiet machine gives. Block medians are kept
    /// in <see cref="LastBlockRatios"/> for the noise column.
    /// </summary>
    private static (double[] Median, double[] Ratio) Measure(Action[] runs, int rounds)
    {
        long[] iters = runs.Select(Calibrate).ToArray();
        var fastest = new double[runs.Length];
        Array.Fill(fastest, double.MaxValue);
        var times = new double[runs.Length][];
        var ratios = new double[runs.Length][];
        for (int v = 0; v < runs.Length; v++)
        {
            times[v] = new double[rounds];
            ratios[v] = new double[rounds];
        }

        for (int r = 0; r < rounds; r++)
        {
            for (int v = 0; v < runs.Length; v++) times[v][r] = GemmCompare.Block(runs[v], iters[v], ref fastest[v]);
            for (int v = 0; v < runs.Length; v++) ratios[v][r] = times[0][r] / times[v][r];
        }

        LastBlockRatios = ratios.Select(Median).ToArray();
        return (fastest.Select(f => f * 1e6).ToArray(), fastest.Select(f => fastest[0] / f).ToArray());
    }

    private static double Median(double[] values)
    {
        double[] s = [.. values];
        Array.Sort(s);
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;
    }

    private static long Calibrate(Action f)
    {
        for (int i = 0; i < 20; i++) f();
        var sw = Stopwatch.StartNew();
        long n = 0;
        while (sw.Elapsed.TotalSeconds < 0.03)
        {
            f();
            n++;
        }

        return Math.Max(1, (long)(n * 0.1 / sw.Elapsed.TotalSeconds));
    }

    /// <summary>Median over rounds of the per-round block ratio variant 0 / variant, from the last <see cref="Measure"/>.</summary>
    private static double[] LastBlockRatios { get; set; } = [];
}
