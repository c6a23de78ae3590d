using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Recsys.DenseCompute.Embeddings;

/// <summary>How many vector accumulators one column pass keeps in registers (a JIT-time constant).</summary>
internal interface IVectorCount
{
    static abstract int Count { get; }
}

internal struct One : IVectorCount { public static int Count => 1; }
internal struct Two : IVectorCount { public static int Count => 2; }
internal struct Three : IVectorCount { public static int Count => 3; }
internal struct Four : IVectorCount { public static int Count => 4; }
internal struct Five : IVectorCount { public static int Count => 5; }
internal struct Six : IVectorCount { public static int Count => 6; }
internal struct Seven : IVectorCount { public static int Count => 7; }
internal struct Eight : IVectorCount { public static int Count => 8; }

/// <summary>A yes/no known when the JIT specializes a loop (per-index weights, prefetching).</summary>
internal interface IFlag
{
    static abstract bool On { get; }
}

internal struct Yes : IFlag { public static bool On => true; }
internal struct No : IFlag { public static bool On => false; }

/// <summary>Whether and how a bag loop prefetches rows ahead, fixed when the JIT specializes it.</summary>
internal interface IPrefetch
{
    static abstract bool On { get; }
    static abstract bool NonTemporal { get; }
}

internal struct NoPrefetch : IPrefetch { public static bool On => false; public static bool NonTemporal => false; }
internal struct PrefetchT0 : IPrefetch { public static bool On => true; public static bool NonTemporal => false; }
internal struct PrefetchNta : IPrefetch { public static bool On => true; public static bool NonTemporal => true; }

/// <summary>
/// The embedding-bag kernel for one row format. A bag is pooled in column passes of up to 8 vectors
/// held in registers while its rows stream by; each row's weight and dequantization scale fold into one
/// multiplier, and the per-row biases are summed once per bag (sum_j w_j * bias_j) and added at the end.
/// The first pass over a bag prefetches every cache line of the row <see cref="BagJob.Distance"/>
/// positions ahead in the whole index stream, so prefetching runs across bag boundaries.
/// Indices are trusted here: <see cref="EmbeddingBag.Validate"/> checked them once.
/// The kernels skip tiering (AggressiveOptimization): a Pool call over one large batch would otherwise
/// spend its first milliseconds in unoptimized tier-0 loops.
/// </summary>
internal static unsafe class BagKernel<TRow> where TRow : struct, IRowReader
{
    private const int MaxVectors = 8;
    private const int Int4Blocks = 4; // 32-column blocks per int4 pass: 8 accumulators

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(in BagJob job, int* offsets, int bags, bool mean, float* output)
    {
        BagJob j = job;
        bool prefetch = j.Distance > 0;
        if (Avx512F.IsSupported)
        {
            // When one pass holds the whole row in registers, a single specialized loop runs every bag:
            // a call chain and a job copy per bag cost as much as a cached row at small pooling factors.
            if (typeof(TRow) == typeof(Int4Rows))
            {
                if ((j.Dim & 31) == 0 && j.Dim <= 32 * Int4Blocks)
                {
                    PassInt4(j, offsets, 0, bags, 0, j.Dim >> 5, prefetch, output);
                    DivideByBagSizes(offsets, bags, j.Dim, mean, output);
                    return;
                }
            }
            else if ((j.Dim & 15) == 0 && j.Dim <= 16 * MaxVectors)
            {
                Pass512(j, offsets, 0, bags, 0, j.Dim >> 4, prefetch, output);
                DivideByBagSizes(offsets, bags, j.Dim, mean, output);
                return;
            }
            for (int b = 0; b < bags; b++) PoolBag512(j, offsets, b, output);
        }
        else if (Avx2.IsSupported && Fma.IsSupported)
        {
            if ((j.Dim & 7) == 0 && j.Dim <= 8 * MaxVectors)
            {
                Pass256(j, offsets, 0, bags, 0, j.Dim >> 3, prefetch, output);
                DivideByBagSizes(offsets, bags, j.Dim, mean, output);
                return;
            }
            for (int b = 0; b < bags; b++) PoolBag256(j, offsets, b, output);
        }
        else
        {
            for (int b = 0; b < bags; b++)
            {
                int start = offsets[b], end = offsets[b + 1];
                PoolBagScalar(j, start, end, 1f, output + (nint)b * j.Dim, 0);
            }
        }
        DivideByBagSizes(offsets, bags, j.Dim, mean, output);
    }


    // Mean pooling divides afterwards, in one pass over the output, so the gather loops carry no mean
    // branch, scale or division per bag. Same arithmetic as before: (sum + bias) * (1 / n).
    private static void DivideByBagSizes(int* offsets, int bags, int dim, bool mean, float* output)
    {
        if (!mean) return;
        for (int b = 0; b < bags; b++)
        {
            int n = offsets[b + 1] - offsets[b];
            if (n <= 1) continue;
            var pooled = new Span<float>(output + ((nint)b * dim), dim);
            TensorPrimitives.Multiply(pooled, 1f / n, pooled);
        }
    }

    // Rows wider than one pass: bag b in column passes of up to 8 vectors, then the tail columns.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PoolBag512(in BagJob job, int* offsets, int b, float* output)
    {
        int col0 = 0;
        if (typeof(TRow) == typeof(Int4Rows))
        {
            col0 = job.Dim & ~31;
            for (int col = 0; col < col0; col += 32 * Int4Blocks)
            {
                PassInt4(job, offsets, b, b + 1, col, Math.Min(Int4Blocks, (col0 - col) >> 5), col == 0 && job.Distance > 0, output);
            }
        }
        int full = job.Dim & ~15;
        for (int col = col0; col < full; col += 16 * MaxVectors)
        {
            Pass512(job, offsets, b, b + 1, col, Math.Min(MaxVectors, (full - col) >> 4), col == 0 && job.Distance > 0, output);
        }
        if (full < job.Dim)
        {
            int start = offsets[b], end = offsets[b + 1];
            TailPass(job, start, end, full, full == 0 && job.Distance > 0, 1f, output + (nint)b * job.Dim);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PoolBag256(in BagJob job, int* offsets, int b, float* output)
    {
        int full = job.Dim & ~7;
        for (int col = 0; col < full; col += 8 * MaxVectors)
        {
            Pass256(job, offsets, b, b + 1, col, Math.Min(MaxVectors, (full - col) >> 3), col == 0 && job.Distance > 0, output);
        }
        if (full < job.Dim)
        {
            int start = offsets[b], end = offsets[b + 1];
            PoolBagScalar(job, start, end, 1f, output + (nint)b * job.Dim, full);
        }
    }

    // Float rows carry no bias: skipped rather than added as 0.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Finish(Vector512<float> sum, Vector512<float> bias) => TRow.HasOffset ? sum + bias : sum;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Finish(Vector256<float> sum, Vector256<float> bias) => TRow.HasOffset ? sum + bias : sum;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Accumulate(Vector512<float> values, Vector512<float> multiplier, Vector512<float> sum, bool unit) =>
        unit ? sum + values : Vector512.FusedMultiplyAdd(values, multiplier, sum);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Accumulate(Vector256<float> values, Vector256<float> multiplier, Vector256<float> sum, bool unit) =>
        unit ? sum + values : Vector256.FusedMultiplyAdd(values, multiplier, sum);

    /// <summary>
    /// Touches every cache line of a row: <paramref name="steps"/> lines from its start and then its
    /// last byte (<see cref="BagJob.PrefetchSteps"/>). Up to three steps are unrolled, so the common rows
    /// (64-256 B) take no loop; the step count is the same for every row, so its branches predict.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchRow<TPrefetch>(byte* row, int rowBytes, int steps)
        where TPrefetch : struct, IPrefetch
    {
        if (TPrefetch.NonTemporal)
        {
            if (steps > 0) Sse.PrefetchNonTemporal(row);
            if (steps > 1) Sse.PrefetchNonTemporal(row + 64);
            if (steps > 2) Sse.PrefetchNonTemporal(row + 128);
            for (int k = 3; k < steps; k++) Sse.PrefetchNonTemporal(row + (64 * k));
            Sse.PrefetchNonTemporal(row + rowBytes - 1);
        }
        else
        {
            if (steps > 0) Sse.Prefetch0(row);
            if (steps > 1) Sse.Prefetch0(row + 64);
            if (steps > 2) Sse.Prefetch0(row + 128);
            for (int k = 3; k < steps; k++) Sse.Prefetch0(row + (64 * k));
            Sse.Prefetch0(row + rowBytes - 1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowMultiplier(byte* row, int dim, float weight, ref float bias)
    {
        if (!TRow.HasOffset) return weight;
        TRow.RowScale(row, dim, out float multiplier, out float offset);
        bias += weight * offset;
        return weight * multiplier;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowMultiplier<TWeighted>(byte* row, int dim, float* weights, int j, ref float bias)
        where TWeighted : struct, IFlag
    {
        if (TWeighted.On) return RowMultiplier(row, dim, weights[j], ref bias);
        if (!TRow.HasOffset) return 1f;
        TRow.RowScale(row, dim, out float multiplier, out float offset);
        bias += offset;
        return multiplier;
    }

    // The per-row loops are specialized on vector count, weights and prefetching so their bodies carry
    // no branch but the loops' own. Each runs bags [b0, b1) over columns [col, col + vectors * width).
    private static void Pass512(in BagJob job, int* offsets, int b0, int b1, int col, int vectors, bool prefetch, float* output)
    {
        switch (vectors)
        {
            case 1: Pass512<One>(job, offsets, b0, b1, col, prefetch, output); break;
            case 2: Pass512<Two>(job, offsets, b0, b1, col, prefetch, output); break;
            case 3: Pass512<Three>(job, offsets, b0, b1, col, prefetch, output); break;
            case 4: Pass512<Four>(job, offsets, b0, b1, col, prefetch, output); break;
            case 5: Pass512<Five>(job, offsets, b0, b1, col, prefetch, output); break;
            case 6: Pass512<Six>(job, offsets, b0, b1, col, prefetch, output); break;
            case 7: Pass512<Seven>(job, offsets, b0, b1, col, prefetch, output); break;
            default: Pass512<Eight>(job, offsets, b0, b1, col, prefetch, output); break;
        }
    }

    private static void PassInt4(in BagJob job, int* offsets, int b0, int b1, int col, int blocks, bool prefetch, float* output)
    {
        switch (blocks)
        {
            case 1: PassInt4<One>(job, offsets, b0, b1, col, prefetch, output); break;
            case 2: PassInt4<Two>(job, offsets, b0, b1, col, prefetch, output); break;
            case 3: PassInt4<Three>(job, offsets, b0, b1, col, prefetch, output); break;
            default: PassInt4<Four>(job, offsets, b0, b1, col, prefetch, output); break;
        }
    }

    private static void Pass256(in BagJob job, int* offsets, int b0, int b1, int col, int vectors, bool prefetch, float* output)
    {
        switch (vectors)
        {
            case 1: Pass256<One>(job, offsets, b0, b1, col, prefetch, output); break;
            case 2: Pass256<Two>(job, offsets, b0, b1, col, prefetch, output); break;
            case 3: Pass256<Three>(job, offsets, b0, b1, col, prefetch, output); break;
            case 4: Pass256<Four>(job, offsets, b0, b1, col, prefetch, output); break;
            case 5: Pass256<Five>(job, offsets, b0, b1, col, prefetch, output); break;
            case 6: Pass256<Six>(job, offsets, b0, b1, col, prefetch, output); break;
            case 7: Pass256<Seven>(job, offsets, b0, b1, col, prefetch, output); break;
            default: Pass256<Eight>(job, offsets, b0, b1, col, prefetch, output); break;
        }
    }

    private static void Pass512<TN>(in BagJob job, int* offsets, int b0, int b1, int col, bool prefetch, float* output)
        where TN : struct, IVectorCount
    {
        if (job.Weights == null)
        {
            if (prefetch) Pass512<TN, No>(job, offsets, b0, b1, col, output);
            else Pass512<TN, No, NoPrefetch>(job, offsets, b0, b1, col, output);
        }
        else if (prefetch) Pass512<TN, Yes>(job, offsets, b0, b1, col, output);
        else Pass512<TN, Yes, NoPrefetch>(job, offsets, b0, b1, col, output);
    }

    private static void Pass512<TN, TWeighted>(in BagJob job, int* offsets, int b0, int b1, int col, float* output)
        where TN : struct, IVectorCount
        where TWeighted : struct, IFlag
    {
        if (job.NonTemporal) Pass512<TN, TWeighted, PrefetchNta>(job, offsets, b0, b1, col, output);
        else Pass512<TN, TWeighted, PrefetchT0>(job, offsets, b0, b1, col, output);
    }

    private static void PassInt4<TN>(in BagJob job, int* offsets, int b0, int b1, int col, bool prefetch, float* output)
        where TN : struct, IVectorCount
    {
        if (job.Weights == null)
        {
            if (prefetch) PassInt4<TN, No>(job, offsets, b0, b1, col, output);
            else PassInt4<TN, No, NoPrefetch>(job, offsets, b0, b1, col, output);
        }
        else if (prefetch) PassInt4<TN, Yes>(job, offsets, b0, b1, col, output);
        else PassInt4<TN, Yes, NoPrefetch>(job, offsets, b0, b1, col, output);
    }

    private static void PassInt4<TN, TWeighted>(in BagJob job, int* offsets, int b0, int b1, int col, float* output)
        where TN : struct, IVectorCount
        where TWeighted : struct, IFlag
    {
        if (job.NonTemporal) PassInt4<TN, TWeighted, PrefetchNta>(job, offsets, b0, b1, col, output);
        else PassInt4<TN, TWeighted, PrefetchT0>(job, offsets, b0, b1, col, output);
    }

    private static void Pass256<TN>(in BagJob job, int* offsets, int b0, int b1, int col, bool prefetch, float* output)
        where TN : struct, IVectorCount
    {
        if (job.Weights == null)
        {
            if (prefetch) Pass256<TN, No>(job, offsets, b0, b1, col, output);
            else Pass256<TN, No, NoPrefetch>(job, offsets, b0, b1, col, output);
        }
        else if (prefetch) Pass256<TN, Yes>(job, offsets, b0, b1, col, output);
        else Pass256<TN, Yes, NoPrefetch>(job, offsets, b0, b1, col, output);
    }

    private static void Pass256<TN, TWeighted>(in BagJob job, int* offsets, int b0, int b1, int col, float* output)
        where TN : struct, IVectorCount
        where TWeighted : struct, IFlag
    {
        if (job.NonTemporal) Pass256<TN, TWeighted, PrefetchNta>(job, offsets, b0, b1, col, output);
        else Pass256<TN, TWeighted, PrefetchT0>(job, offsets, b0, b1, col, output);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pass512<TN, TWeighted, TPrefetch>(BagJob job, int* offsets, int b0, int b1, int col, float* output)
        where TN : struct, IVectorCount
        where TWeighted : struct, IFlag
        where TPrefetch : struct, IPrefetch
    {
        byte* table = job.Table;
        long* indices = job.Indices;
        float* weights = job.Weights;
        int rowBytes = job.RowBytes, dim = job.Dim;
        int distance = job.Distance, last = job.Last, steps = job.PrefetchSteps;
        bool unit = !TWeighted.On && !TRow.HasOffset; // every multiplier is 1: add, and skip the broadcast
        nint c = col; // native-width column, so each load's offset folds into its address
        float* o = output + ((nint)b0 * dim) + col;
        int start = offsets[b0];
        for (int b = b0; b < b1; b++)
        {
            int end = offsets[b + 1];
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> a4 = default, a5 = default, a6 = default, a7 = default;
            float bias = 0f;
            for (int j = start; j < end; j++)
            {
                if (TPrefetch.On) PrefetchRow<TPrefetch>(table + (indices[Math.Min(j + distance, last)] * rowBytes), rowBytes, steps);
                byte* row = table + indices[j] * rowBytes;
                float m = RowMultiplier<TWeighted>(row, dim, weights, j, ref bias);
                Vector512<float> vm = Vector512.Create(m);
                a0 = Accumulate(TRow.Load512(row, c), vm, a0, unit);
                if (TN.Count > 1) a1 = Accumulate(TRow.Load512(row, c + 16), vm, a1, unit);
                if (TN.Count > 2) a2 = Accumulate(TRow.Load512(row, c + 32), vm, a2, unit);
                if (TN.Count > 3) a3 = Accumulate(TRow.Load512(row, c + 48), vm, a3, unit);
                if (TN.Count > 4) a4 = Accumulate(TRow.Load512(row, c + 64), vm, a4, unit);
                if (TN.Count > 5) a5 = Accumulate(TRow.Load512(row, c + 80), vm, a5, unit);
                if (TN.Count > 6) a6 = Accumulate(TRow.Load512(row, c + 96), vm, a6, unit);
                if (TN.Count > 7) a7 = Accumulate(TRow.Load512(row, c + 112), vm, a7, unit);
            }
            Vector512<float> vb = Vector512.Create(bias);
            Finish(a0, vb).Store(o);
            if (TN.Count > 1) Finish(a1, vb).Store(o + 16);
            if (TN.Count > 2) Finish(a2, vb).Store(o + 32);
            if (TN.Count > 3) Finish(a3, vb).Store(o + 48);
            if (TN.Count > 4) Finish(a4, vb).Store(o + 64);
            if (TN.Count > 5) Finish(a5, vb).Store(o + 80);
            if (TN.Count > 6) Finish(a6, vb).Store(o + 96);
            if (TN.Count > 7) Finish(a7, vb).Store(o + 112);
            o += dim;
            start = end;
        }
    }

    // Int4 rows, 32 columns (16 bytes) per block: zero-extend the 16 bytes to dwords once and split
    // each into its low nibble (even column) and high nibble (odd column), accumulating even and odd
    // columns apart. The columns are interleaved back once per bag instead of once per row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PassInt4<TN, TWeighted, TPrefetch>(BagJob job, int* offsets, int b0, int b1, int col, float* output)
        where TN : struct, IVectorCount
        where TWeighted : struct, IFlag
        where TPrefetch : struct, IPrefetch
    {
        byte* table = job.Table;
        long* indices = job.Indices;
        float* weights = job.Weights;
        int rowBytes = job.RowBytes, dim = job.Dim;
        int distance = job.Distance, last = job.Last, steps = job.PrefetchSteps;
        Vector512<int> low = Vector512.Create(0x0F);
        for (int b = b0; b < b1; b++)
        {
            int start = offsets[b], end = offsets[b + 1];
            Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default;
            Vector512<float> o0 = default, o1 = default, o2 = default, o3 = default;
            float bias = 0f;
            for (int j = start; j < end; j++)
            {
                if (TPrefetch.On) PrefetchRow<TPrefetch>(table + (indices[Math.Min(j + distance, last)] * rowBytes), rowBytes, steps);
                byte* row = table + indices[j] * rowBytes;
                float m = RowMultiplier<TWeighted>(row, dim, weights, j, ref bias);
                Vector512<float> vm = Vector512.Create(m);
                byte* p = row + (col >> 1);
                Vector512<int> q0 = Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(p));
                e0 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(q0 & low), vm, e0);
                o0 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Vector512.ShiftRightLogical(q0, 4)), vm, o0);
                if (TN.Count > 1)
                {
                    Vector512<int> q1 = Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(p + 16));
                    e1 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(q1 & low), vm, e1);
                    o1 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Vector512.ShiftRightLogical(q1, 4)), vm, o1);
                }
                if (TN.Count > 2)
                {
                    Vector512<int> q2 = Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(p + 32));
                    e2 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(q2 & low), vm, e2);
                    o2 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Vector512.ShiftRightLogical(q2, 4)), vm, o2);
                }
                if (TN.Count > 3)
                {
                    Vector512<int> q3 = Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(p + 48));
                    e3 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(q3 & low), vm, e3);
                    o3 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Vector512.ShiftRightLogical(q3, 4)), vm, o3);
                }
            }
            Vector512<float> vb = Vector512.Create(bias);
            float* o = output + ((nint)b * dim) + col;
            StoreInterleaved(e0, o0, vb, o);
            if (TN.Count > 1) StoreInterleaved(e1, o1, vb, o + 32);
            if (TN.Count > 2) StoreInterleaved(e2, o2, vb, o + 64);
            if (TN.Count > 3) StoreInterleaved(e3, o3, vb, o + 96);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreInterleaved(Vector512<float> even, Vector512<float> odd, Vector512<float> bias, float* o)
    {
        Vector512<int> first = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        Vector512<int> second = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        even += bias;
        odd += bias;
        Avx512F.PermuteVar16x32x2(even, first, odd).Store(o);
        Avx512F.PermuteVar16x32x2(even, second, odd).Store(o + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pass256<TN, TWeighted, TPrefetch>(BagJob job, int* offsets, int b0, int b1, int col, float* output)
        where TN : struct, IVectorCount
        where TWeighted : struct, IFlag
        where TPrefetch : struct, IPrefetch
    {
        byte* table = job.Table;
        long* indices = job.Indices;
        float* weights = job.Weights;
        int rowBytes = job.RowBytes, dim = job.Dim;
        int distance = job.Distance, last = job.Last, steps = job.PrefetchSteps;
        bool unit = !TWeighted.On && !TRow.HasOffset; // every multiplier is 1: add, and skip the broadcast
        nint c = col; // native-width column, so each load's offset folds into its address
        float* o = output + ((nint)b0 * dim) + col;
        int start = offsets[b0];
        for (int b = b0; b < b1; b++)
        {
            int end = offsets[b + 1];
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector256<float> a4 = default, a5 = default, a6 = default, a7 = default;
            float bias = 0f;
            for (int j = start; j < end; j++)
            {
                if (TPrefetch.On) PrefetchRow<TPrefetch>(table + (indices[Math.Min(j + distance, last)] * rowBytes), rowBytes, steps);
                byte* row = table + indices[j] * rowBytes;
                float m = RowMultiplier<TWeighted>(row, dim, weights, j, ref bias);
                Vector256<float> vm = Vector256.Create(m);
                a0 = Accumulate(TRow.Load256(row, c), vm, a0, unit);
                if (TN.Count > 1) a1 = Accumulate(TRow.Load256(row, c + 8), vm, a1, unit);
                if (TN.Count > 2) a2 = Accumulate(TRow.Load256(row, c + 16), vm, a2, unit);
                if (TN.Count > 3) a3 = Accumulate(TRow.Load256(row, c + 24), vm, a3, unit);
                if (TN.Count > 4) a4 = Accumulate(TRow.Load256(row, c + 32), vm, a4, unit);
                if (TN.Count > 5) a5 = Accumulate(TRow.Load256(row, c + 40), vm, a5, unit);
                if (TN.Count > 6) a6 = Accumulate(TRow.Load256(row, c + 48), vm, a6, unit);
                if (TN.Count > 7) a7 = Accumulate(TRow.Load256(row, c + 56), vm, a7, unit);
            }
            Vector256<float> vb = Vector256.Create(bias);
            Finish(a0, vb).Store(o);
            if (TN.Count > 1) Finish(a1, vb).Store(o + 8);
            if (TN.Count > 2) Finish(a2, vb).Store(o + 16);
            if (TN.Count > 3) Finish(a3, vb).Store(o + 24);
            if (TN.Count > 4) Finish(a4, vb).Store(o + 32);
            if (TN.Count > 5) Finish(a5, vb).Store(o + 40);
            if (TN.Count > 6) Finish(a6, vb).Store(o + 48);
            if (TN.Count > 7) Finish(a7, vb).Store(o + 56);
            o += dim;
            start = end;
        }
    }

    // Columns [col, D) with D - col < 16 on the AVX-512 path: one 256-bit accumulator for 8 of them
    // and scalar accumulation for the last 0..7.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TailPass(BagJob job, int start, int end, int col, bool prefetch, float scale, float* dst)
    {
        int dim = job.Dim;
        int vectorEnd = dim - col >= 8 ? col + 8 : col;
        float* o = dst + col;
        new Span<float>(dst + vectorEnd, dim - vectorEnd).Clear();
        Vector256<float> acc = default;
        float bias = 0f;
        for (int j = start; j < end; j++)
        {
            if (prefetch) job.Prefetch(j);
            byte* row = job.Table + job.Indices[j] * job.RowBytes;
            float m = RowMultiplier(row, dim, job.Weights == null ? 1f : job.Weights[j], ref bias);
            if (vectorEnd > col) acc = Vector256.FusedMultiplyAdd(TRow.Load256(row, col), Vector256.Create(m), acc);
            for (int c = vectorEnd; c < dim; c++) dst[c] += m * TRow.LoadScalar(row, c);
        }
        if (vectorEnd > col) ((acc + Vector256.Create(bias)) * Vector256.Create(scale)).Store(o);
        for (int c = vectorEnd; c < dim; c++) dst[c] = (dst[c] + bias) * scale;
    }

    // Machines without AVX2, and the last D mod 8 columns on the AVX2 path.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PoolBagScalar(BagJob job, int start, int end, float scale, float* dst, int col)
    {
        int dim = job.Dim;
        new Span<float>(dst + col, dim - col).Clear();
        float bias = 0f;
        for (int j = start; j < end; j++)
        {
            if (col == 0 && job.Distance > 0) job.Prefetch(j);
            byte* row = job.Table + job.Indices[j] * job.RowBytes;
            float m = RowMultiplier(row, dim, job.Weights == null ? 1f : job.Weights[j], ref bias);
            for (int c = col; c < dim; c++) dst[c] += m * TRow.LoadScalar(row, c);
        }
        for (int c = col; c < dim; c++) dst[c] = (dst[c] + bias) * scale;
    }
}

/// <summary>One Pool call's table and index stream, copied by value into each pass.</summary>
internal readonly unsafe struct BagJob
{
    public readonly byte* Table;
    public readonly long* Indices;
    public readonly float* Weights; // null: every weight is 1
    public readonly int RowBytes;
    public readonly int Dim;
    public readonly int Last;       // last valid index position, for clamping the prefetch
    public readonly int Distance;   // prefetch distance in indices; 0 = off
    public readonly bool NonTemporal;
    public readonly int Lines;      // prefetches at row + 64 k, k < Lines
    public readonly bool Straddles; // rows of a size that is no multiple of 64 can touch one line more
    public readonly int PrefetchSteps; // lines prefetched from the row start before its last byte

    public BagJob(byte* table, int rowBytes, int dim, long* indices, int count, float* weights, int distance, bool nonTemporal)
    {
        Table = table;
        RowBytes = rowBytes;
        Dim = dim;
        Indices = indices;
        Weights = weights;
        Last = count - 1;
        Distance = distance;
        NonTemporal = nonTemporal;
        Lines = (rowBytes + 63) >> 6;
        Straddles = (rowBytes & 63) != 0;
        // Lines from the start, then the last byte: when rows are whole lines that byte is in the last one.
        PrefetchSteps = Straddles ? Lines : Lines - 1;
    }

    /// <summary>Touches every cache line of the row used <see cref="Distance"/> positions after <paramref name="position"/>.</summary>
    /// <remarks>
    /// The number of prefetches is fixed per table (one per 64 bytes, plus the row's last byte when rows
    /// can straddle a line): a count that depended on each row's alignment would make this loop's exit
    /// branch mispredict on about every other row, which costs more than the spare prefetch.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(int position)
    {
        if (!Sse.IsSupported) return;
        byte* row = Table + Indices[Math.Min(position + Distance, Last)] * RowBytes;
        if (NonTemporal)
        {
            for (int k = 0; k < Lines; k++) Sse.PrefetchNonTemporal(row + 64 * k);
            if (Straddles) Sse.PrefetchNonTemporal(row + RowBytes - 1);
        }
        else
        {
            for (int k = 0; k < Lines; k++) Sse.Prefetch0(row + 64 * k);
            if (Straddles) Sse.Prefetch0(row + RowBytes - 1);
        }
    }
}
