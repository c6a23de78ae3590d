using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// AVX2 register tile: up to 6 rows x 16 columns (12 ymm accumulators + 2 for B + 1 broadcast
/// of the 16 ymm), run twice per 32-column panel, once per half, over the same packed layout
/// as the AVX-512 kernel.
/// </summary>
internal readonly struct Avx2MicroKernel : IMicroKernel
{
    private const int S = GemmLayout.ARowStride;

    public static int MaxRows => 6;

    public static int WideMaxRows => 0;

    public static unsafe void Tile(int rows, float* a, float* b, int kc, float* c, int ldc, float* bias, bool init, bool relu)
    {
        switch (rows)
        {
            case 1: Half<Rows1>(a, b, kc, c, ldc, bias, init, relu); Half<Rows1>(a, b + 16, kc, c + 16, ldc, bias + 16, init, relu); break;
            case 2: Half<Rows2>(a, b, kc, c, ldc, bias, init, relu); Half<Rows2>(a, b + 16, kc, c + 16, ldc, bias + 16, init, relu); break;
            case 3: Half<Rows3>(a, b, kc, c, ldc, bias, init, relu); Half<Rows3>(a, b + 16, kc, c + 16, ldc, bias + 16, init, relu); break;
            case 4: Half<Rows4>(a, b, kc, c, ldc, bias, init, relu); Half<Rows4>(a, b + 16, kc, c + 16, ldc, bias + 16, init, relu); break;
            case 5: Half<Rows5>(a, b, kc, c, ldc, bias, init, relu); Half<Rows5>(a, b + 16, kc, c + 16, ldc, bias + 16, init, relu); break;
            case 6: Half<Rows6>(a, b, kc, c, ldc, bias, init, relu); Half<Rows6>(a, b + 16, kc, c + 16, ldc, bias + 16, init, relu); break;
            default: throw new ArgumentOutOfRangeException(nameof(rows), rows, "tile height must be 1..6");
        }
    }

    public static unsafe void WideTile(int rows, float* a, float* b0, float* b1, int kc, float* c, int ldc, float* bias, bool init, bool relu) =>
        throw new NotSupportedException("the AVX2 kernel has no two-panel tile");

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Half<TRows>(float* a, float* b, int kc, float* c, int ldc, float* bias, bool init, bool relu)
        where TRows : struct, IRowCount
    {
        int r = TRows.Value;
        Vector256<float> z = Vector256<float>.Zero;
        Vector256<float> c0a = z, c0b = z, c1a = z, c1b = z, c2a = z, c2b = z, c3a = z, c3b = z, c4a = z, c4b = z, c5a = z, c5b = z;
        if (init)
        {
            Vector256<float> bl = Vector256.Load(bias), bh = Vector256.Load(bias + 8);
            { c0a = bl; c0b = bh; }
            if (r > 1) { c1a = bl; c1b = bh; }
            if (r > 2) { c2a = bl; c2b = bh; }
            if (r > 3) { c3a = bl; c3b = bh; }
            if (r > 4) { c4a = bl; c4b = bh; }
            if (r > 5) { c5a = bl; c5b = bh; }
        }
        else
        {
            { c0a = Vector256.Load(c + (0 * ldc)); c0b = Vector256.Load(c + (0 * ldc) + 8); }
            if (r > 1) { c1a = Vector256.Load(c + (1 * ldc)); c1b = Vector256.Load(c + (1 * ldc) + 8); }
            if (r > 2) { c2a = Vector256.Load(c + (2 * ldc)); c2b = Vector256.Load(c + (2 * ldc) + 8); }
            if (r > 3) { c3a = Vector256.Load(c + (3 * ldc)); c3b = Vector256.Load(c + (3 * ldc) + 8); }
            if (r > 4) { c4a = Vector256.Load(c + (4 * ldc)); c4b = Vector256.Load(c + (4 * ldc) + 8); }
            if (r > 5) { c5a = Vector256.Load(c + (5 * ldc)); c5b = Vector256.Load(c + (5 * ldc) + 8); }
        }

        for (int k = 0; k < kc; k++)
        {
            Vector256<float> bl = Vector256.LoadAligned(b), bh = Vector256.LoadAligned(b + 8);
            Vector256<float> av;
            { av = Vector256.Create(a[0 * S]); c0a = Vector256.FusedMultiplyAdd(av, bl, c0a); c0b = Vector256.FusedMultiplyAdd(av, bh, c0b); }
            if (r > 1) { av = Vector256.Create(a[1 * S]); c1a = Vector256.FusedMultiplyAdd(av, bl, c1a); c1b = Vector256.FusedMultiplyAdd(av, bh, c1b); }
            if (r > 2) { av = Vector256.Create(a[2 * S]); c2a = Vector256.FusedMultiplyAdd(av, bl, c2a); c2b = Vector256.FusedMultiplyAdd(av, bh, c2b); }
            if (r > 3) { av = Vector256.Create(a[3 * S]); c3a = Vector256.FusedMultiplyAdd(av, bl, c3a); c3b = Vector256.FusedMultiplyAdd(av, bh, c3b); }
            if (r > 4) { av = Vector256.Create(a[4 * S]); c4a = Vector256.FusedMultiplyAdd(av, bl, c4a); c4b = Vector256.FusedMultiplyAdd(av, bh, c4b); }
            if (r > 5) { av = Vector256.Create(a[5 * S]); c5a = Vector256.FusedMultiplyAdd(av, bl, c5a); c5b = Vector256.FusedMultiplyAdd(av, bh, c5b); }
            a++;
            b += 32;
        }

        // MaxNative is one vmaxps; with the zero first a NaN sum stays NaN, as torch.relu keeps it.
        if (relu)
        {
            { c0a = Vector256.MaxNative(z, c0a); c0b = Vector256.MaxNative(z, c0b); }
            if (r > 1) { c1a = Vector256.MaxNative(z, c1a); c1b = Vector256.MaxNative(z, c1b); }
            if (r > 2) { c2a = Vector256.MaxNative(z, c2a); c2b = Vector256.MaxNative(z, c2b); }
            if (r > 3) { c3a = Vector256.MaxNative(z, c3a); c3b = Vector256.MaxNative(z, c3b); }
            if (r > 4) { c4a = Vector256.MaxNative(z, c4a); c4b = Vector256.MaxNative(z, c4b); }
            if (r > 5) { c5a = Vector256.MaxNative(z, c5a); c5b = Vector256.MaxNative(z, c5b); }
        }

        { Vector256.Store(c0a, c + (0 * ldc)); Vector256.Store(c0b, c + (0 * ldc) + 8); }
        if (r > 1) { Vector256.Store(c1a, c + (1 * ldc)); Vector256.Store(c1b, c + (1 * ldc) + 8); }
        if (r > 2) { Vector256.Store(c2a, c + (2 * ldc)); Vector256.Store(c2b, c + (2 * ldc) + 8); }
        if (r > 3) { Vector256.Store(c3a, c + (3 * ldc)); Vector256.Store(c3b, c + (3 * ldc) + 8); }
        if (r > 4) { Vector256.Store(c4a, c + (4 * ldc)); Vector256.Store(c4b, c + (4 * ldc) + 8); }
        if (r > 5) { Vector256.Store(c5a, c + (5 * ldc)); Vector256.Store(c5b, c + (5 * ldc) + 8); }
    }
}
