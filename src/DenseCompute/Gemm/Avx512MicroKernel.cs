// Every accumulator is its own local, written out row by row, because the JIT keeps only
// locals in registers; an array or InlineArray of vectors would live in memory.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// AVX-512 register tile: up to 14 rows x 32 columns (two zmm per row, 28 accumulators,
/// plus two for the B row and one for the broadcast A value = 31 of the 32 zmm).
/// A rows are packed at a fixed stride (a[i * 256 + k]) so each row's broadcast is a constant displacement; B is one packed panel (b[k * 32 + j]).
/// </summary>
internal readonly struct Avx512MicroKernel : IMicroKernel
{
    private const int S = GemmLayout.ARowStride;

    public static int MaxRows => 14;

    public static int WideMaxRows => 3;

    public static unsafe void Tile(int rows, float* a, float* b, int kc, float* c, int ldc, float* bias, bool init, bool relu)
    {
        switch (rows)
        {
            case 1: Tile<Rows1>(a, b, kc, c, ldc, bias, init, relu); break;
            case 2: Tile<Rows2>(a, b, kc, c, ldc, bias, init, relu); break;
            case 3: Tile<Rows3>(a, b, kc, c, ldc, bias, init, relu); break;
            case 4: Tile<Rows4>(a, b, kc, c, ldc, bias, init, relu); break;
            case 5: Tile<Rows5>(a, b, kc, c, ldc, bias, init, relu); break;
            case 6: Tile<Rows6>(a, b, kc, c, ldc, bias, init, relu); break;
            case 7: Tile<Rows7>(a, b, kc, c, ldc, bias, init, relu); break;
            case 8: Tile<Rows8>(a, b, kc, c, ldc, bias, init, relu); break;
            case 9: Tile<Rows9>(a, b, kc, c, ldc, bias, init, relu); break;
            case 10: Tile<Rows10>(a, b, kc, c, ldc, bias, init, relu); break;
            case 11: Tile<Rows11>(a, b, kc, c, ldc, bias, init, relu); break;
            case 12: Tile<Rows12>(a, b, kc, c, ldc, bias, init, relu); break;
            case 13: Tile<Rows13>(a, b, kc, c, ldc, bias, init, relu); break;
            case 14: Tile<Rows14>(a, b, kc, c, ldc, bias, init, relu); break;
            default: throw new ArgumentOutOfRangeException(nameof(rows), rows, "tile height must be 1..14");
        }
    }

    public static unsafe void WideTile(int rows, float* a, float* b0, float* b1, int kc, float* c, int ldc, float* bias, bool init, bool relu)
    {
        switch (rows)
        {
            case 1: WideTile<Rows1>(a, b0, b1, kc, c, ldc, bias, init, relu); break;
            case 2: WideTile<Rows2>(a, b0, b1, kc, c, ldc, bias, init, relu); break;
            case 3: WideTile<Rows3>(a, b0, b1, kc, c, ldc, bias, init, relu); break;
            default: throw new ArgumentOutOfRangeException(nameof(rows), rows, "wide tile height must be 1..3");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile<TRows>(float* a, float* b, int kc, float* c, int ldc, float* bias, bool init, bool relu)
        where TRows : struct, IRowCount
    {
        int r = TRows.Value;
        Vector512<float> z = Vector512<float>.Zero;
        Vector512<float> c0a = z, c0b = z, c1a = z, c1b = z, c2a = z, c2b = z, c3a = z, c3b = z, c4a = z, c4b = z, c5a = z, c5b = z, c6a = z, c6b = z, c7a = z, c7b = z, c8a = z, c8b = z, c9a = z, c9b = z, c10a = z, c10b = z, c11a = z, c11b = z, c12a = z, c12b = z, c13a = z, c13b = z;
        if (init)
        {
            Vector512<float> bl = Vector512.Load(bias), bh = Vector512.Load(bias + 16);
            { c0a = bl; c0b = bh; }
            if (r > 1) { c1a = bl; c1b = bh; }
            if (r > 2) { c2a = bl; c2b = bh; }
            if (r > 3) { c3a = bl; c3b = bh; }
            if (r > 4) { c4a = bl; c4b = bh; }
            if (r > 5) { c5a = bl; c5b = bh; }
            if (r > 6) { c6a = bl; c6b = bh; }
            if (r > 7) { c7a = bl; c7b = bh; }
            if (r > 8) { c8a = bl; c8b = bh; }
            if (r > 9) { c9a = bl; c9b = bh; }
            if (r > 10) { c10a = bl; c10b = bh; }
            if (r > 11) { c11a = bl; c11b = bh; }
            if (r > 12) { c12a = bl; c12b = bh; }
            if (r > 13) { c13a = bl; c13b = bh; }
        }
        else
        {
            { c0a = Vector512.Load(c + (0 * ldc)); c0b = Vector512.Load(c + (0 * ldc) + 16); }
            if (r > 1) { c1a = Vector512.Load(c + (1 * ldc)); c1b = Vector512.Load(c + (1 * ldc) + 16); }
            if (r > 2) { c2a = Vector512.Load(c + (2 * ldc)); c2b = Vector512.Load(c + (2 * ldc) + 16); }
            if (r > 3) { c3a = Vector512.Load(c + (3 * ldc)); c3b = Vector512.Load(c + (3 * ldc) + 16); }
            if (r > 4) { c4a = Vector512.Load(c + (4 * ldc)); c4b = Vector512.Load(c + (4 * ldc) + 16); }
            if (r > 5) { c5a = Vector512.Load(c + (5 * ldc)); c5b = Vector512.Load(c + (5 * ldc) + 16); }
            if (r > 6) { c6a = Vector512.Load(c + (6 * ldc)); c6b = Vector512.Load(c + (6 * ldc) + 16); }
            if (r > 7) { c7a = Vector512.Load(c + (7 * ldc)); c7b = Vector512.Load(c + (7 * ldc) + 16); }
            if (r > 8) { c8a = Vector512.Load(c + (8 * ldc)); c8b = Vector512.Load(c + (8 * ldc) + 16); }
            if (r > 9) { c9a = Vector512.Load(c + (9 * ldc)); c9b = Vector512.Load(c + (9 * ldc) + 16); }
            if (r > 10) { c10a = Vector512.Load(c + (10 * ldc)); c10b = Vector512.Load(c + (10 * ldc) + 16); }
            if (r > 11) { c11a = Vector512.Load(c + (11 * ldc)); c11b = Vector512.Load(c + (11 * ldc) + 16); }
            if (r > 12) { c12a = Vector512.Load(c + (12 * ldc)); c12b = Vector512.Load(c + (12 * ldc) + 16); }
            if (r > 13) { c13a = Vector512.Load(c + (13 * ldc)); c13b = Vector512.Load(c + (13 * ldc) + 16); }
        }

        for (int k = 0; k < kc; k++)
        {
            Vector512<float> bl = Vector512.LoadAligned(b), bh = Vector512.LoadAligned(b + 16);
            Vector512<float> av;
            { av = Vector512.Create(a[0 * S]); c0a = Vector512.FusedMultiplyAdd(av, bl, c0a); c0b = Vector512.FusedMultiplyAdd(av, bh, c0b); }
            if (r > 1) { av = Vector512.Create(a[1 * S]); c1a = Vector512.FusedMultiplyAdd(av, bl, c1a); c1b = Vector512.FusedMultiplyAdd(av, bh, c1b); }
            if (r > 2) { av = Vector512.Create(a[2 * S]); c2a = Vector512.FusedMultiplyAdd(av, bl, c2a); c2b = Vector512.FusedMultiplyAdd(av, bh, c2b); }
            if (r > 3) { av = Vector512.Create(a[3 * S]); c3a = Vector512.FusedMultiplyAdd(av, bl, c3a); c3b = Vector512.FusedMultiplyAdd(av, bh, c3b); }
            if (r > 4) { av = Vector512.Create(a[4 * S]); c4a = Vector512.FusedMultiplyAdd(av, bl, c4a); c4b = Vector512.FusedMultiplyAdd(av, bh, c4b); }
            if (r > 5) { av = Vector512.Create(a[5 * S]); c5a = Vector512.FusedMultiplyAdd(av, bl, c5a); c5b = Vector512.FusedMultiplyAdd(av, bh, c5b); }
            if (r > 6) { av = Vector512.Create(a[6 * S]); c6a = Vector512.FusedMultiplyAdd(av, bl, c6a); c6b = Vector512.FusedMultiplyAdd(av, bh, c6b); }
            if (r > 7) { av = Vector512.Create(a[7 * S]); c7a = Vector512.FusedMultiplyAdd(av, bl, c7a); c7b = Vector512.FusedMultiplyAdd(av, bh, c7b); }
            if (r > 8) { av = Vector512.Create(a[8 * S]); c8a = Vector512.FusedMultiplyAdd(av, bl, c8a); c8b = Vector512.FusedMultiplyAdd(av, bh, c8b); }
            if (r > 9) { av = Vector512.Create(a[9 * S]); c9a = Vector512.FusedMultiplyAdd(av, bl, c9a); c9b = Vector512.FusedMultiplyAdd(av, bh, c9b); }
            if (r > 10) { av = Vector512.Create(a[10 * S]); c10a = Vector512.FusedMultiplyAdd(av, bl, c10a); c10b = Vector512.FusedMultiplyAdd(av, bh, c10b); }
            if (r > 11) { av = Vector512.Create(a[11 * S]); c11a = Vector512.FusedMultiplyAdd(av, bl, c11a); c11b = Vector512.FusedMultiplyAdd(av, bh, c11b); }
            if (r > 12) { av = Vector512.Create(a[12 * S]); c12a = Vector512.FusedMultiplyAdd(av, bl, c12a); c12b = Vector512.FusedMultiplyAdd(av, bh, c12b); }
            if (r > 13) { av = Vector512.Create(a[13 * S]); c13a = Vector512.FusedMultiplyAdd(av, bl, c13a); c13b = Vector512.FusedMultiplyAdd(av, bh, c13b); }
            a++;
            b += 32;
        }

        // MaxNative is one vmaxps; with the zero first a NaN sum stays NaN, as torch.relu keeps it.
        if (relu)
        {
            { c0a = Vector512.MaxNative(z, c0a); c0b = Vector512.MaxNative(z, c0b); }
            if (r > 1) { c1a = Vector512.MaxNative(z, c1a); c1b = Vector512.MaxNative(z, c1b); }
            if (r > 2) { c2a = Vector512.MaxNative(z, c2a); c2b = Vector512.MaxNative(z, c2b); }
            if (r > 3) { c3a = Vector512.MaxNative(z, c3a); c3b = Vector512.MaxNative(z, c3b); }
            if (r > 4) { c4a = Vector512.MaxNative(z, c4a); c4b = Vector512.MaxNative(z, c4b); }
            if (r > 5) { c5a = Vector512.MaxNative(z, c5a); c5b = Vector512.MaxNative(z, c5b); }
            if (r > 6) { c6a = Vector512.MaxNative(z, c6a); c6b = Vector512.MaxNative(z, c6b); }
            if (r > 7) { c7a = Vector512.MaxNative(z, c7a); c7b = Vector512.MaxNative(z, c7b); }
            if (r > 8) { c8a = Vector512.MaxNative(z, c8a); c8b = Vector512.MaxNative(z, c8b); }
            if (r > 9) { c9a = Vector512.MaxNative(z, c9a); c9b = Vector512.MaxNative(z, c9b); }
            if (r > 10) { c10a = Vector512.MaxNative(z, c10a); c10b = Vector512.MaxNative(z, c10b); }
            if (r > 11) { c11a = Vector512.MaxNative(z, c11a); c11b = Vector512.MaxNative(z, c11b); }
            if (r > 12) { c12a = Vector512.MaxNative(z, c12a); c12b = Vector512.MaxNative(z, c12b); }
            if (r > 13) { c13a = Vector512.MaxNative(z, c13a); c13b = Vector512.MaxNative(z, c13b); }
        }

        { Vector512.Store(c0a, c + (0 * ldc)); Vector512.Store(c0b, c + (0 * ldc) + 16); }
        if (r > 1) { Vector512.Store(c1a, c + (1 * ldc)); Vector512.Store(c1b, c + (1 * ldc) + 16); }
        if (r > 2) { Vector512.Store(c2a, c + (2 * ldc)); Vector512.Store(c2b, c + (2 * ldc) + 16); }
        if (r > 3) { Vector512.Store(c3a, c + (3 * ldc)); Vector512.Store(c3b, c + (3 * ldc) + 16); }
        if (r > 4) { Vector512.Store(c4a, c + (4 * ldc)); Vector512.Store(c4b, c + (4 * ldc) + 16); }
        if (r > 5) { Vector512.Store(c5a, c + (5 * ldc)); Vector512.Store(c5b, c + (5 * ldc) + 16); }
        if (r > 6) { Vector512.Store(c6a, c + (6 * ldc)); Vector512.Store(c6b, c + (6 * ldc) + 16); }
        if (r > 7) { Vector512.Store(c7a, c + (7 * ldc)); Vector512.Store(c7b, c + (7 * ldc) + 16); }
        if (r > 8) { Vector512.Store(c8a, c + (8 * ldc)); Vector512.Store(c8b, c + (8 * ldc) + 16); }
        if (r > 9) { Vector512.Store(c9a, c + (9 * ldc)); Vector512.Store(c9b, c + (9 * ldc) + 16); }
        if (r > 10) { Vector512.Store(c10a, c + (10 * ldc)); Vector512.Store(c10b, c + (10 * ldc) + 16); }
        if (r > 11) { Vector512.Store(c11a, c + (11 * ldc)); Vector512.Store(c11b, c + (11 * ldc) + 16); }
        if (r > 12) { Vector512.Store(c12a, c + (12 * ldc)); Vector512.Store(c12b, c + (12 * ldc) + 16); }
        if (r > 13) { Vector512.Store(c13a, c + (13 * ldc)); Vector512.Store(c13b, c + (13 * ldc) + 16); }
    }

    /// <summary>
    /// Two panels side by side for tiles of 1..3 rows: a 1-row tile over one panel keeps only two
    /// FMA chains in flight, too few to hide FMA latency while the weights stream by.
    /// Each output keeps the same k order as <see cref="Tile{TRows}"/>, so results match bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void WideTile<TRows>(float* a, float* b0, float* b1, int kc, float* c, int ldc, float* bias, bool init, bool relu)
        where TRows : struct, IRowCount
    {
        int r = TRows.Value;
        Vector512<float> z = Vector512<float>.Zero;
        Vector512<float> d00 = z, d01 = z, d02 = z, d03 = z, d10 = z, d11 = z, d12 = z, d13 = z, d20 = z, d21 = z, d22 = z, d23 = z;
        if (init)
        {
            Vector512<float> q0 = Vector512.Load(bias), q1 = Vector512.Load(bias + 16), q2 = Vector512.Load(bias + 32), q3 = Vector512.Load(bias + 48);
            { d00 = q0; d01 = q1; d02 = q2; d03 = q3; }
            if (r > 1) { d10 = q0; d11 = q1; d12 = q2; d13 = q3; }
            if (r > 2) { d20 = q0; d21 = q1; d22 = q2; d23 = q3; }
        }
        else
        {
            { d00 = Vector512.Load(c + (0 * ldc) + 0); d01 = Vector512.Load(c + (0 * ldc) + 16); d02 = Vector512.Load(c + (0 * ldc) + 32); d03 = Vector512.Load(c + (0 * ldc) + 48); }
            if (r > 1) { d10 = Vector512.Load(c + (1 * ldc) + 0); d11 = Vector512.Load(c + (1 * ldc) + 16); d12 = Vector512.Load(c + (1 * ldc) + 32); d13 = Vector512.Load(c + (1 * ldc) + 48); }
            if (r > 2) { d20 = Vector512.Load(c + (2 * ldc) + 0); d21 = Vector512.Load(c + (2 * ldc) + 16); d22 = Vector512.Load(c + (2 * ldc) + 32); d23 = Vector512.Load(c + (2 * ldc) + 48); }
        }

        for (int k = 0; k < kc; k++)
        {
            Vector512<float> q0 = Vector512.LoadAligned(b0), q1 = Vector512.LoadAligned(b0 + 16);
            Vector512<float> q2 = Vector512.LoadAligned(b1), q3 = Vector512.LoadAligned(b1 + 16);
            Vector512<float> av;
            { av = Vector512.Create(a[0 * S]); d00 = Vector512.FusedMultiplyAdd(av, q0, d00); d01 = Vector512.FusedMultiplyAdd(av, q1, d01); d02 = Vector512.FusedMultiplyAdd(av, q2, d02); d03 = Vector512.FusedMultiplyAdd(av, q3, d03); }
            if (r > 1) { av = Vector512.Create(a[1 * S]); d10 = Vector512.FusedMultiplyAdd(av, q0, d10); d11 = Vector512.FusedMultiplyAdd(av, q1, d11); d12 = Vector512.FusedMultiplyAdd(av, q2, d12); d13 = Vector512.FusedMultiplyAdd(av, q3, d13); }
            if (r > 2) { av = Vector512.Create(a[2 * S]); d20 = Vector512.FusedMultiplyAdd(av, q0, d20); d21 = Vector512.FusedMultiplyAdd(av, q1, d21); d22 = Vector512.FusedMultiplyAdd(av, q2, d22); d23 = Vector512.FusedMultiplyAdd(av, q3, d23); }
            a++;
            b0 += 32;
            b1 += 32;
        }

        // MaxNative is one vmaxps; with the zero first a NaN sum stays NaN, as torch.relu keeps it.
        if (relu)
        {
            { d00 = Vector512.MaxNative(z, d00); d01 = Vector512.MaxNative(z, d01); d02 = Vector512.MaxNative(z, d02); d03 = Vector512.MaxNative(z, d03); }
            if (r > 1) { d10 = Vector512.MaxNative(z, d10); d11 = Vector512.MaxNative(z, d11); d12 = Vector512.MaxNative(z, d12); d13 = Vector512.MaxNative(z, d13); }
            if (r > 2) { d20 = Vector512.MaxNative(z, d20); d21 = Vector512.MaxNative(z, d21); d22 = Vector512.MaxNative(z, d22); d23 = Vector512.MaxNative(z, d23); }
        }

        { Vector512.Store(d00, c + (0 * ldc) + 0); Vector512.Store(d01, c + (0 * ldc) + 16); Vector512.Store(d02, c + (0 * ldc) + 32); Vector512.Store(d03, c + (0 * ldc) + 48); }
        if (r > 1) { Vector512.Store(d10, c + (1 * ldc) + 0); Vector512.Store(d11, c + (1 * ldc) + 16); Vector512.Store(d12, c + (1 * ldc) + 32); Vector512.Store(d13, c + (1 * ldc) + 48); }
        if (r > 2) { Vector512.Store(d20, c + (2 * ldc) + 0); Vector512.Store(d21, c + (2 * ldc) + 16); Vector512.Store(d22, c + (2 * ldc) + 32); Vector512.Store(d23, c + (2 * ldc) + 48); }
    }
}
