using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Quantized;

// Generated shape: every accumulator is its own local (the JIT keeps only locals in registers).

/// <summary>
/// AvxVnni tile: up to 6 rows x 16 columns per call (12 ymm accumulators, 2 for B, 1 broadcast: AvxVnni is
/// VEX-encoded, so only ymm0-15 are usable), run twice per 32-column panel. One <c>vpdpbusd</c> multiplies 4
/// u8 activations by 4 s8 weights per int32 lane and adds the sum to the lane without saturation.
/// </summary>
internal static unsafe class VnniInt8Kernel
{
    public const int MaxRows = 6;

    public static void Tile(int rows, byte* a, int lda, sbyte* b, int groups, int* acc)
    {
        switch (rows)
        {
            case 1: Half<Rows1>(a, lda, b, groups, acc); Half<Rows1>(a, lda, b + 64, groups, acc + 16); break;
            case 2: Half<Rows2>(a, lda, b, groups, acc); Half<Rows2>(a, lda, b + 64, groups, acc + 16); break;
            case 3: Half<Rows3>(a, lda, b, groups, acc); Half<Rows3>(a, lda, b + 64, groups, acc + 16); break;
            case 4: Half<Rows4>(a, lda, b, groups, acc); Half<Rows4>(a, lda, b + 64, groups, acc + 16); break;
            case 5: Half<Rows5>(a, lda, b, groups, acc); Half<Rows5>(a, lda, b + 64, groups, acc + 16); break;
            case 6: Half<Rows6>(a, lda, b, groups, acc); Half<Rows6>(a, lda, b + 64, groups, acc + 16); break;
            default: throw new ArgumentOutOfRangeException(nameof(rows), rows, "tile height must be 1..6");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Half<TRows>(byte* a, int lda, sbyte* b, int groups, int* acc)
        where TRows : struct, IRowCount
    {
        int r = TRows.Value;
        Vector256<int> z = Vector256<int>.Zero;
        Vector256<int> c0a = z, c0b = z, c1a = z, c1b = z, c2a = z, c2b = z, c3a = z, c3b = z, c4a = z, c4b = z, c5a = z, c5b = z;
        for (int g = 0; g < groups; g++)
        {
            Vector256<sbyte> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 32);
            Vector256<byte> av;
            { av = Vector256.Create(*(int*)(a + (0 * lda))).AsByte(); c0a = AvxVnni.MultiplyWideningAndAdd(c0a, av, b0); c0b = AvxVnni.MultiplyWideningAndAdd(c0b, av, b1); }
            if (r > 1) { av = Vector256.Create(*(int*)(a + (1 * lda))).AsByte(); c1a = AvxVnni.MultiplyWideningAndAdd(c1a, av, b0); c1b = AvxVnni.MultiplyWideningAndAdd(c1b, av, b1); }
            if (r > 2) { av = Vector256.Create(*(int*)(a + (2 * lda))).AsByte(); c2a = AvxVnni.MultiplyWideningAndAdd(c2a, av, b0); c2b = AvxVnni.MultiplyWideningAndAdd(c2b, av, b1); }
            if (r > 3) { av = Vector256.Create(*(int*)(a + (3 * lda))).AsByte(); c3a = AvxVnni.MultiplyWideningAndAdd(c3a, av, b0); c3b = AvxVnni.MultiplyWideningAndAdd(c3b, av, b1); }
            if (r > 4) { av = Vector256.Create(*(int*)(a + (4 * lda))).AsByte(); c4a = AvxVnni.MultiplyWideningAndAdd(c4a, av, b0); c4b = AvxVnni.MultiplyWideningAndAdd(c4b, av, b1); }
            if (r > 5) { av = Vector256.Create(*(int*)(a + (5 * lda))).AsByte(); c5a = AvxVnni.MultiplyWideningAndAdd(c5a, av, b0); c5b = AvxVnni.MultiplyWideningAndAdd(c5b, av, b1); }
            a += 4;
            b += 128;
        }

        { Vector256.Store(c0a, acc + (0 * 32)); Vector256.Store(c0b, acc + (0 * 32) + 8); }
        if (r > 1) { Vector256.Store(c1a, acc + (1 * 32)); Vector256.Store(c1b, acc + (1 * 32) + 8); }
        if (r > 2) { Vector256.Store(c2a, acc + (2 * 32)); Vector256.Store(c2b, acc + (2 * 32) + 8); }
        if (r > 3) { Vector256.Store(c3a, acc + (3 * 32)); Vector256.Store(c3b, acc + (3 * 32) + 8); }
        if (r > 4) { Vector256.Store(c4a, acc + (4 * 32)); Vector256.Store(c4b, acc + (4 * 32) + 8); }
        if (r > 5) { Vector256.Store(c5a, acc + (5 * 32)); Vector256.Store(c5b, acc + (5 * 32) + 8); }
    }
}
