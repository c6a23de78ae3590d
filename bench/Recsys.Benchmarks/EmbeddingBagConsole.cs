using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.Benchmarks;

/// <summary>
/// Big-table embedding-bag throughput, console mode (BenchmarkDotNet's many iterations over a 4 GiB
/// table take too long). Mirrors /work/shared/baselines/gather.c so the two run back to back:
/// one table of ROWS rows (4 GiB of fp32 D=64 rows by default, the same row count for every format),
/// uniform random ids from the same xorshift, B bags of P ids per batch, the median batch of N
/// (the first one discarded), one thread.
///   dotnet run -c Release --project bench/Recsys.Benchmarks -- embag [--gib 4] [--dim 64]
///     [--formats fp32,fp16,int8,int4] [--p 20,80] [--pf 32] [--nta 0] [--bags 16384] [--batches 12]
///     [--weights 0] [--mean 0] [--peer /tmp/embag-bench/gather.so]
/// --gib sizes the table as if fp32, so every format holds the same rows; --pf is a list too (0 = off).
/// --peer loads gather.c's kernels built as a library (see bench/peers/gather_cpu.c) and, for fp32 and int8
/// rows with D = 64 or 128, runs them on the same table and the same ids batch by batch, alternating with
/// ours, so both see the same moments of a noisy machine; it prints the median of the per-batch ratios.
/// </summary>
public static unsafe partial class EmbeddingBagConsole
{
    private static delegate* unmanaged<int, int, void*, uint*, nuint, int, int, float*, int, int, int> s_peer;

    public static void Run(string[] args)
    {
        var opt = Options.Parse(args);
        if (opt.Peer.Length > 0)
        {
            s_peer = (delegate* unmanaged<int, int, void*, uint*, nuint, int, int, float*, int, int, int>)
                NativeLibrary.GetExport(NativeLibrary.Load(opt.Peer), "gather_bags");
        }
        long rows = (long)(opt.Gib * (1L << 30)) / (opt.Dim * 4L);
        Console.WriteLine($"INFO dim={opt.Dim} rows={rows} bags={opt.Bags} batches={opt.Batches} weights={opt.Weighted} mean={opt.Mean} nta={opt.NonTemporal}");
        foreach (RowFormat format in opt.Formats)
        {
            using var table = new EmbeddingTable(rows, opt.Dim, format);
            var fill = Stopwatch.StartNew();
            Fill(table);
            Console.WriteLine($"INFO format={RowLayout.Name(format)} table={table.SizeBytes / (double)(1L << 30):F2}GiB rowBytes={table.RowBytes} " +
                $"hugeAdvised={table.HugePagesAdvised} AnonHugePages={AnonHugePagesKb()}kB fill={fill.Elapsed.TotalSeconds:F1}s");
            foreach (int p in opt.PoolingFactors)
            {
                foreach (int pf in opt.PrefetchDistances) Measure(table, opt, p, pf);
            }
        }
    }

    private static void Measure(EmbeddingTable table, Options opt, int p, int pf)
    {
        int perBatch = opt.Bags * p;
        long[] indices = new long[(long)perBatch * opt.Batches];
        ulong x = 88172645463325252UL;
        for (long i = 0; i < indices.Length; i++)
        {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            indices[i] = (long)Math.BigMul(x, (ulong)table.Rows, out _);
        }
        int[] offsets = new int[opt.Bags + 1];
        for (int b = 0; b <= opt.Bags; b++) offsets[b] = b * p;
        float[] weights = opt.Weighted ? Enumerable.Range(0, perBatch).Select(i => 0.5f + (i % 7) * 0.1f).ToArray() : [];
        // 64-byte aligned like gather.c's output: a pinned array starts 16 bytes into a line, so every
        // 64-byte store of a bag would split across two lines.
        float* alignedOutput = (float*)NativeMemory.AlignedAlloc((nuint)(opt.Bags * table.Dim * sizeof(float)), 64);
        var output = new Span<float>(alignedOutput, opt.Bags * table.Dim);
        EmbeddingBag.PrefetchDistance = pf;
        EmbeddingBag.PrefetchNonTemporal = opt.NonTemporal;
        double[] seconds = new double[opt.Batches], cpuSeconds = new double[opt.Batches];
        // The peer runs gather.c's plain sum, so it is only comparable on unweighted sums of fp32/int8 rows.
        bool peer = s_peer != null && table.Format is RowFormat.Fp32 or RowFormat.Int8 && table.Dim is 64 or 128
            && !opt.Weighted && !opt.Mean;
        uint[] ids32 = peer ? indices.Select(i => (uint)i).ToArray() : [];
        float* peerOutput = peer ? (float*)NativeMemory.AlignedAlloc((nuint)(opt.Bags * table.Dim * sizeof(float)), 64) : null;
        double[] peerSeconds = new double[opt.Batches], peerCpu = new double[opt.Batches];
        double check = 0;
        for (int n = 0; n < opt.Batches; n++)
        {
            // Alternate which side goes first, so neither always follows the other's cache footprint.
            if (peer && n % 2 == 1) RunPeer(table, ids32, n * perBatch, perBatch, p, pf, peerOutput, opt.Bags, out peerSeconds[n], out peerCpu[n]);
            var ids = indices.AsSpan(n * perBatch, perBatch);
            double c0 = ThreadCpuSeconds();
            long t0 = Stopwatch.GetTimestamp();
            EmbeddingBag.Pool(table, ids, offsets, weights, opt.Mean ? Pooling.Mean : Pooling.Sum, output);
            seconds[n] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            cpuSeconds[n] = ThreadCpuSeconds() - c0;
            check += output[(n * 7919) % output.Length];
            if (peer && n % 2 == 0) RunPeer(table, ids32, n * perBatch, perBatch, p, pf, peerOutput, opt.Bags, out peerSeconds[n], out peerCpu[n]);
        }
        if (peer) ReportPeer(table, p, pf, opt.Bags, perBatch, seconds, cpuSeconds, peerSeconds, peerCpu, output, new ReadOnlySpan<float>(peerOutput, output.Length));
        NativeMemory.AlignedFree(alignedOutput);
        NativeMemory.AlignedFree(peerOutput);
        double[] timed = seconds[1..], cpu = cpuSeconds[1..];
        Array.Sort(timed);
        Array.Sort(cpu);
        double med = timed[timed.Length / 2], best = timed[0], worst = timed[^1], cpuMed = cpu[cpu.Length / 2];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT impl=csharp format={RowLayout.Name(table.Format)} D={table.Dim} rowB={table.RowBytes} P={p} pf={pf} threads=1 bags={opt.Bags} " +
            $"Mrows_s_med={perBatch / med / 1e6:F2} Mrows_s_min={perBatch / worst / 1e6:F2} Mrows_s_max={perBatch / best / 1e6:F2} " +
            $"GBps_med={(double)perBatch * table.RowBytes / med / 1e9:F2} Mrows_s_cpu_med={perBatch / cpuMed / 1e6:F2} chk={check:G4}"));
    }

    private static void RunPeer(EmbeddingTable table, uint[] ids32, int first, int count, int p, int pf, float* output, int bags,
        out double seconds, out double cpuSeconds)
    {
        fixed (uint* ids = &ids32[first])
        {
            float* o = output;
            double c0 = ThreadCpuSeconds();
            long t0 = Stopwatch.GetTimestamp();
            int rc = s_peer(table.Format == RowFormat.Int8 ? 1 : 0, table.Dim, table.Base, ids, (nuint)count, p, pf, o, 0, bags);
            seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            cpuSeconds = ThreadCpuSeconds() - c0;
            if (rc != 0) throw new InvalidOperationException($"gather_bags refused D={table.Dim}");
        }
    }

    // Per-batch ratios (C time / our time: > 1 means ours is faster), first batch dropped, median; and a
    // check that both computed the same last batch.
    private static void ReportPeer(EmbeddingTable table, int p, int pf, int bags, int perBatch, double[] ours, double[] oursCpu,
        double[] peer, double[] peerCpu, ReadOnlySpan<float> output, ReadOnlySpan<float> peerOutput)
    {
        static double Median(IEnumerable<double> v)
        {
            double[] a = v.ToArray();
            Array.Sort(a);
            return a[a.Length / 2];
        }
        var batches = Enumerable.Range(1, ours.Length - 1).ToArray();
        double wall = Median(batches.Select(n => peer[n] / ours[n])), cpu = Median(batches.Select(n => peerCpu[n] / oursCpu[n]));
        double lo = batches.Min(n => peer[n] / ours[n]), hi = batches.Max(n => peer[n] / ours[n]);
        float diff = 0;
        for (int i = 0; i < output.Length; i++) diff = MathF.Max(diff, MathF.Abs(output[i] - peerOutput[i]));
        string name = RowLayout.Name(table.Format);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT impl=c-inproc format={name} D={table.Dim} rowB={table.RowBytes} P={p} pf={pf} threads=1 bags={bags} " +
            $"Mrows_s_med={perBatch / Median(peer[1..]) / 1e6:F2} Mrows_s_cpu_med={perBatch / Median(peerCpu[1..]) / 1e6:F2}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RATIO ours/C format={name} D={table.Dim} P={p} pf={pf} wall_med={wall:F3} wall_min={lo:F3} wall_max={hi:F3} cpu_med={cpu:F3} " +
            $"load={File.ReadAllText("/proc/loadavg").Split(' ')[0]} maxdiff={diff:G3}"));
    }

    // Same word pattern as gather.c (finite floats of moderate size), then a valid header per
    // quantized row so the kernel does its real per-row work.
    private static void Fill(EmbeddingTable table)
    {
        byte* baseAddress = table.Base;
        long words = table.SizeBytes / 4;
        const long Chunk = 1 << 22;
        Parallel.For(0, (words + Chunk - 1) / Chunk, c =>
        {
            uint* w = (uint*)baseAddress;
            long end = Math.Min(words, (c + 1) * Chunk);
            for (long i = c * Chunk; i < end; i++) w[i] = (uint)(i * 2654435761L) & 0x3f7f7f7fu;
            // Two halves per word: keep them finite, |x| in [1/8, 1), either sign (gather.c's pattern
            // would make half NaNs and Infs).
            if (table.Format == RowFormat.Fp16)
            {
                for (long i = c * Chunk; i < end; i++) w[i] = (w[i] & 0x8FFF_8FFFu) | 0x3000_3000u;
            }
        });
        if (table.Format is RowFormat.Int8 or RowFormat.Int4)
        {
            int dim = table.Dim, rowBytes = table.RowBytes;
            bool int8 = table.Format == RowFormat.Int8;
            Parallel.For(0, (table.Rows + Chunk - 1) / Chunk, c =>
            {
                long end = Math.Min(table.Rows, (c + 1) * Chunk);
                for (long r = c * Chunk; r < end; r++)
                {
                    byte* row = baseAddress + r * rowBytes;
                    if (int8)
                    {
                        *(float*)(row + dim) = 0.01f;
                        *(float*)(row + dim + 4) = -0.5f;
                    }
                    else
                    {
                        byte* header = row + (dim + 1) / 2;
                        *(Half*)header = (Half)0.1f;
                        *(Half*)(header + 2) = (Half)(-0.5f);
                    }
                }
            });
        }
    }

    // Time this thread spent on a CPU: on a shared, oversubscribed machine wall time mostly measures
    // the scheduler, so both are reported (the peers report both too).
    private static double ThreadCpuSeconds()
    {
        if (!OperatingSystem.IsLinux()) return Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
        Timespec t;
        _ = clock_gettime(ClockThreadCpuTime, &t);
        return t.Seconds + t.Nanoseconds * 1e-9;
    }

    private const int ClockThreadCpuTime = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc")]
    private static partial int clock_gettime(int clock, Timespec* time);

    private static long AnonHugePagesKb()
    {
        if (!OperatingSystem.IsLinux()) return -1;
        foreach (string line in File.ReadLines("/proc/self/smaps_rollup"))
        {
            if (line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(14).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
        }
        return -1;
    }

    private sealed record Options(double Gib, int Dim, RowFormat[] Formats, int[] PoolingFactors, int[] PrefetchDistances,
        bool NonTemporal, int Bags, int Batches, bool Weighted, bool Mean, string Peer)
    {
        public static Options Parse(string[] args)
        {
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < args.Length; i++)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                {
                    throw new ArgumentException($"expected '--name value' at argument {i}: '{args[i]}'");
                }
                map[args[i][2..]] = args[++i];
            }
            string Get(string name, string fallback) => map.Remove(name, out string? v) ? v : fallback;
            int[] Ints(string name, string fallback) =>
                Get(name, fallback).Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            var o = new Options(
                double.Parse(Get("gib", "4"), CultureInfo.InvariantCulture),
                int.Parse(Get("dim", "64"), CultureInfo.InvariantCulture),
                Get("formats", "fp32,fp16,int8,int4").Split(',').Select(s =>
                    RowLayout.TryParse(s, out var f) ? f : throw new ArgumentException($"--formats: unknown row format '{s}'")).ToArray(),
                Ints("p", "20,80"),
                Ints("pf", "32"),
                Get("nta", "0") == "1",
                int.Parse(Get("bags", "16384"), CultureInfo.InvariantCulture),
                int.Parse(Get("batches", "12"), CultureInfo.InvariantCulture),
                Get("weights", "0") == "1",
                Get("mean", "0") == "1",
                Get("peer", ""));
            if (map.Count > 0) throw new ArgumentException($"unknown option(s): {string.Join(", ", map.Keys.Select(k => "--" + k))}");
            if (o.Batches < 2) throw new ArgumentException("--batches must be >= 2 (the first is discarded)");
            return o;
        }
    }
}
