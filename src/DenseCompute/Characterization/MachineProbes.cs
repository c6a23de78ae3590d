using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.DenseCompute.Characterization;

/// <summary>Sizes of the built-in probes; the defaults take a few seconds in all.</summary>
/// <param name="StreamBytes">Buffer the bandwidth probe reads; far larger than the last-level cache.</param>
/// <param name="GatherTableBytes">Table the gather probe reads random rows from, in huge-page advised memory like real tables.</param>
/// <param name="GatherRows">Random rows per gather measurement.</param>
/// <param name="Repeats">Passes over each probe's data; every probe keeps its best short run, since a limit is what the machine can do.</param>
public sealed record ProbeSettings(long StreamBytes = 256L << 20, long GatherTableBytes = 512L << 20, int GatherRows = 1 << 20, int Repeats = 3, int[]? GatherRowBytes = null)
{
    public IReadOnlyList<int> RowSizes => GatherRowBytes ?? [64, 128, 256];
}

/// <summary>
/// Measures the single-core limits the roofline needs, with the same instruction sets our kernels
/// use: a Vector512 (else Vector256) streaming sum; a gather of random rows with software prefetch
/// 32 rows ahead, as the bag kernel does; an FMA loop with 16 independent accumulators (enough to
/// cover FMA latency on two pipes); a vpdpbusd loop through AvxVnni.
/// </summary>
public static unsafe class MachineProbes
{
    private const int PrefetchDistance = 32;
    private const int CacheLine = 64;
    private const long StreamChunkBytes = 16L << 20;
    private const int GatherWindow = 1 << 15;
    private const int PeakIterations = 1 << 15;
    private const int PeakRuns = 200;

    public static MachineLimits Run(ProbeSettings? settings = null, IProgress<string>? progress = null)
    {
        settings ??= new ProbeSettings();
        progress?.Report("probe: streaming read");
        double stream = StreamReadBytesPerSecond(settings.StreamBytes, settings.Repeats);
        progress?.Report("probe: random row gather");
        GatherRate[] gather = GatherRates(settings.GatherTableBytes, settings.RowSizes, settings.GatherRows, settings.Repeats);
        progress?.Report("probe: fp32 and int8 peak");
        double fp32 = Fp32PeakFlopsPerSecond(settings.Repeats);
        double? int8 = AvxVnni.IsSupported ? Int8PeakOpsPerSecond(settings.Repeats) : null;
        return new MachineLimits("probed (1 core)", stream, gather, fp32, int8);
    }

    public static double StreamReadBytesPerSecond(long bytes, int repeats)
    {
        if (bytes < 1 << 20) throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "the stream probe needs at least 1 MiB");
        bytes &= ~(long)(8 * CacheLine - 1);
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, CacheLine);
        try
        {
            // Written first so every page is backed before the timed reads.
            new Span<byte>(buffer, (int)Math.Min(bytes, int.MaxValue)).Fill(1);
            for (long i = int.MaxValue; i < bytes; i += 4096) buffer[i] = 1;
            // Timed in chunks walked round the whole buffer, keeping the best: on a shared machine a
            // short run often escapes pre-emption where a long one cannot, and a chunk was last
            // read a buffer's length ago, so it is not in cache.
            long chunk = Math.Min(bytes, StreamChunkBytes);
            long chunks = bytes / chunk;
            double best = 0;
            for (long c = 0; c < chunks * Math.Max(1, repeats); c++)
            {
                byte* start = buffer + (c % chunks) * chunk;
                long t0 = Stopwatch.GetTimestamp();
                Sink(SumBytes(start, chunk));
                best = Math.Max(best, chunk / Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float SumBytes(byte* p, long bytes)
    {
        // Eight loads in flight per iteration; summed as floats only to keep the loads alive.
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (long i = 0; i < bytes; i += 8 * CacheLine)
            {
                float* f = (float*)(p + i);
                a0 += Vector512.LoadAligned(f);
                a1 += Vector512.LoadAligned(f + 16);
                a2 += Vector512.LoadAligned(f + 32);
                a3 += Vector512.LoadAligned(f + 48);
                a4 += Vector512.LoadAligned(f + 64);
                a5 += Vector512.LoadAligned(f + 80);
                a6 += Vector512.LoadAligned(f + 96);
                a7 += Vector512.LoadAligned(f + 112);
            }
            return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);
        }
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        for (long i = 0; i < bytes; i += 4 * 32)
        {
            float* f = (float*)(p + i);
            b0 += Vector256.LoadAligned(f);
            b1 += Vector256.LoadAligned(f + 8);
            b2 += Vector256.LoadAligned(f + 16);
            b3 += Vector256.LoadAligned(f + 24);
        }
        return Vector256.Sum(b0 + b1 + b2 + b3);
    }

    /// <summary>Rows per second for each row size, gathered at random from one table of <paramref name="tableBytes"/>.</summary>
    public static GatherRate[] GatherRates(long tableBytes, IReadOnlyList<int> rowSizes, int rows, int repeats)
    {
        foreach (int size in rowSizes)
        {
            if (size < CacheLine || size % CacheLine != 0) throw new ArgumentOutOfRangeException(nameof(rowSizes), size, "gather row sizes are whole cache lines (64, 128, ...)");
        }
        if (rows < PrefetchDistance) throw new ArgumentOutOfRangeException(nameof(rows), rows, $"at least {PrefetchDistance} rows");
        // An EmbeddingTable so the probe reads memory advised exactly as served tables are.
        using var table = new EmbeddingTable(tableBytes / 256, 64, RowFormat.Fp32);
        new Span<byte>(table.Base, (int)Math.Min(table.SizeBytes, int.MaxValue)).Fill(1);
        for (long i = int.MaxValue; i < table.SizeBytes; i += 4096) table.Base[i] = 1;
        var offsets = new long[rows + PrefetchDistance];
        var rng = new Random(12345);
        var rates = new GatherRate[rowSizes.Count];
        for (int s = 0; s < rowSizes.Count; s++)
        {
            int rowBytes = rowSizes[s];
            long tableRows = table.SizeBytes / rowBytes;
            for (int i = 0; i < offsets.Length; i++) offsets[i] = rng.NextInt64(tableRows) * rowBytes;
            double best = 0;
            int window = Math.Min(rows, GatherWindow);
            fixed (long* off = offsets)
            {
                // Short windows of the index stream, best kept, for the same reason as the stream probe.
                for (int r = 0; r < Math.Max(1, repeats); r++)
                {
                    for (int w = 0; w + window <= rows; w += window)
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        Sink(GatherSum(table.Base, off + w, window, rowBytes / CacheLine));
                        best = Math.Max(best, window / Stopwatch.GetElapsedTime(t0).TotalSeconds);
                    }
                }
            }
            rates[s] = new GatherRate(rowBytes, best);
        }
        return rates;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float GatherSum(byte* table, long* offsets, int rows, int lines)
    {
        Vector512<float> acc = default;
        Vector256<float> acc256 = default;
        bool wide = Vector512.IsHardwareAccelerated;
        for (int i = 0; i < rows; i++)
        {
            byte* ahead = table + offsets[i + PrefetchDistance];
            byte* row = table + offsets[i];
            for (int l = 0; l < lines; l++)
            {
                if (Sse.IsSupported) Sse.Prefetch0(ahead + l * CacheLine);
                if (wide) acc += Vector512.LoadAligned((float*)(row + l * CacheLine));
                else acc256 += Vector256.LoadAligned((float*)(row + l * CacheLine)) + Vector256.LoadAligned((float*)(row + l * CacheLine + 32));
            }
        }
        return Vector512.Sum(acc) + Vector256.Sum(acc256);
    }

    /// <summary>fp32 flops per second of fused multiply-adds (2 flops each) on the widest vectors available.</summary>
    public static double Fp32PeakFlopsPerSecond(int repeats)
    {
        const int Iterations = PeakIterations;
        double best = 0;
        for (int r = 0; r < PeakRuns * Math.Max(1, repeats) / 5 + 1; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Sink(FmaLoop(Iterations, out int flopsPerIteration));
            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            // The first run also pays for the JIT; the best of many short runs is the peak.
            if (r > 0) best = Math.Max(best, (double)Iterations * flopsPerIteration / seconds);
        }
        return best;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float FmaLoop(int iterations, out int flopsPerIteration)
    {
        if (Avx512F.IsSupported)
        {
            flopsPerIteration = 16 * 16 * 2;
            Vector512<float> m = Vector512.Create(0.999999f), c = Vector512.Create(1e-7f);
            Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            Vector512<float> a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
            for (int i = 0; i < iterations; i++)
            {
                a0 = Avx512F.FusedMultiplyAdd(a0, m, c); a1 = Avx512F.FusedMultiplyAdd(a1, m, c);
                a2 = Avx512F.FusedMultiplyAdd(a2, m, c); a3 = Avx512F.FusedMultiplyAdd(a3, m, c);
                a4 = Avx512F.FusedMultiplyAdd(a4, m, c); a5 = Avx512F.FusedMultiplyAdd(a5, m, c);
                a6 = Avx512F.FusedMultiplyAdd(a6, m, c); a7 = Avx512F.FusedMultiplyAdd(a7, m, c);
                a8 = Avx512F.FusedMultiplyAdd(a8, m, c); a9 = Avx512F.FusedMultiplyAdd(a9, m, c);
                a10 = Avx512F.FusedMultiplyAdd(a10, m, c); a11 = Avx512F.FusedMultiplyAdd(a11, m, c);
                a12 = Avx512F.FusedMultiplyAdd(a12, m, c); a13 = Avx512F.FusedMultiplyAdd(a13, m, c);
                a14 = Avx512F.FusedMultiplyAdd(a14, m, c); a15 = Avx512F.FusedMultiplyAdd(a15, m, c);
            }
            return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15);
        }
        if (Fma.IsSupported)
        {
            flopsPerIteration = 12 * 8 * 2;
            Vector256<float> m = Vector256.Create(0.999999f), c = Vector256.Create(1e-7f);
            Vector256<float> a0 = Vector256.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
            for (int i = 0; i < iterations; i++)
            {
                a0 = Fma.MultiplyAdd(a0, m, c); a1 = Fma.MultiplyAdd(a1, m, c); a2 = Fma.MultiplyAdd(a2, m, c);
                a3 = Fma.MultiplyAdd(a3, m, c); a4 = Fma.MultiplyAdd(a4, m, c); a5 = Fma.MultiplyAdd(a5, m, c);
                a6 = Fma.MultiplyAdd(a6, m, c); a7 = Fma.MultiplyAdd(a7, m, c); a8 = Fma.MultiplyAdd(a8, m, c);
                a9 = Fma.MultiplyAdd(a9, m, c); a10 = Fma.MultiplyAdd(a10, m, c); a11 = Fma.MultiplyAdd(a11, m, c);
            }
            return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }
        flopsPerIteration = 8 * 2;
        float s0 = 1, s1 = 1, s2 = 1, s3 = 1, s4 = 1, s5 = 1, s6 = 1, s7 = 1;
        for (int i = 0; i < iterations; i++)
        {
            s0 = s0 * 0.999999f + 1e-7f; s1 = s1 * 0.999999f + 1e-7f; s2 = s2 * 0.999999f + 1e-7f; s3 = s3 * 0.999999f + 1e-7f;
            s4 = s4 * 0.999999f + 1e-7f; s5 = s5 * 0.999999f + 1e-7f; s6 = s6 * 0.999999f + 1e-7f; s7 = s7 * 0.999999f + 1e-7f;
        }
        return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    }

    /// <summary>
    /// int8 ops per second of 256-bit vpdpbusd: each instruction does 32 u8 x s8 products and their
    /// adds into 8 int32 lanes, counted as 64 ops (as GEMM flops count a multiply-add as 2).
    /// </summary>
    public static double Int8PeakOpsPerSecond(int repeats)
    {
        if (!AvxVnni.IsSupported) throw new PlatformNotSupportedException("AvxVnni (vpdpbusd) is not supported on this CPU");
        const int Iterations = PeakIterations;
        const int OpsPerIteration = 12 * 64;
        double best = 0;
        for (int r = 0; r < PeakRuns * Math.Max(1, repeats) / 5 + 1; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Sink(VnniLoop(Iterations));
            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            if (r > 0) best = Math.Max(best, (double)Iterations * OpsPerIteration / seconds);
        }
        return best;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float VnniLoop(int iterations)
    {
        Vector256<byte> u = Vector256.Create((byte)3);
        Vector256<sbyte> s = Vector256.Create((sbyte)-2);
        Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default;
        Vector256<int> a6 = default, a7 = default, a8 = default, a9 = default, a10 = default, a11 = default;
        for (int i = 0; i < iterations; i++)
        {
            a0 = AvxVnni.MultiplyWideningAndAdd(a0, u, s); a1 = AvxVnni.MultiplyWideningAndAdd(a1, u, s);
            a2 = AvxVnni.MultiplyWideningAndAdd(a2, u, s); a3 = AvxVnni.MultiplyWideningAndAdd(a3, u, s);
            a4 = AvxVnni.MultiplyWideningAndAdd(a4, u, s); a5 = AvxVnni.MultiplyWideningAndAdd(a5, u, s);
            a6 = AvxVnni.MultiplyWideningAndAdd(a6, u, s); a7 = AvxVnni.MultiplyWideningAndAdd(a7, u, s);
            a8 = AvxVnni.MultiplyWideningAndAdd(a8, u, s); a9 = AvxVnni.MultiplyWideningAndAdd(a9, u, s);
            a10 = AvxVnni.MultiplyWideningAndAdd(a10, u, s); a11 = AvxVnni.MultiplyWideningAndAdd(a11, u, s);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    // Results go somewhere the JIT cannot prove unused, so no probe loop is eliminated.
    private static float s_sink;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Sink(float value) => s_sink += value;
}
