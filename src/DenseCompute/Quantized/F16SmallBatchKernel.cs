using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Quantized;

// Generated shape: every accumulator is its own local (the JIT keeps only locals in registers).

/// <summary>
/// fp16-weight tile for short batches: up to 4 rows x two 32-column panels or 8 rows x one, the halves widened in
/// registers right before their FMAs (shift and mask only, see <see cref="HalfWidening"/> for the layout), over the whole K in one pass. Short
/// batches are bound by the weight bytes, so nothing is written back to memory but the output. Each output
/// starts from its bias and takes its FMAs in k order, exactly as the fp32 tiles do, so results are the
/// same bits as the fp32 GEMM on the rounded weights.
/// </summary>
internal static unsafe class F16SmallBatchKernel
{
    /// <summary>Tallest tile over two panels (16 accumulators); one panel takes up to <see cref="MaxRowsSingle"/>.</summary>
    public const int MaxRows = 4;

    public const int MaxRowsSingle = 8;
    private const int W = GemmLayout.PanelWidth;
    private const int FieldMask = HalfWidening.FieldMask;
    private const float Rebias = HalfWidening.Rebias;

    /// <summary>
    /// c[rows x 32·panels] (row stride ldc) = bias + a[rows x k] (row stride lda) · panels; ReLU optional.
    /// With <paramref name="inputPrescaled"/> the caller has multiplied a by 2^112 (<see cref="HalfWidening.ScaleInput"/>),
    /// so the weights stay at their widened scale of 2^-112 and each product is still exactly x·w.
    /// </summary>
    public static void Tile(int rows, int panels, float* a, int lda, ushort* b0, ushort* b1, int k, float* c, int ldc, float* bias, bool relu, bool inputPrescaled)
    {
        if (inputPrescaled) Tile<PrescaledInput>(rows, panels, a, lda, b0, b1, k, c, ldc, bias, relu);
        else Tile<RebiasedWeights>(rows, panels, a, lda, b0, b1, k, c, ldc, bias, relu);
    }

    private static void Tile<TWeights>(int rows, int panels, float* a, int lda, ushort* b0, ushort* b1, int k, float* c, int ldc, float* bias, bool relu)
        where TWeights : struct, IHalfLanes
    {
        if (panels == 2)
        {
            switch (rows)
            {
                case 1: Pair<Rows1, TWeights>(a, lda, b0, b1, k, c, ldc, bias, relu); return;
                case 2: Pair<Rows2, TWeights>(a, lda, b0, b1, k, c, ldc, bias, relu); return;
                case 3: Pair<Rows3, TWeights>(a, lda, b0, b1, k, c, ldc, bias, relu); return;
                case 4: Pair<Rows4, TWeights>(a, lda, b0, b1, k, c, ldc, bias, relu); return;
            }
        }
        else
        {
            switch (rows)
            {
                case 1: Single<Rows1, TWeights>(a, lda, b0, k, c, ldc, bias, relu); return;
                case 2: Single<Rows2, TWeights>(a, lda, b0, k, c, ldc, bias, relu); return;
                case 3: Single<Rows3, TWeights>(a, lda, b0, k, c, ldc, bias, relu); return;
                case 4: Single<Rows4, TWeights>(a, lda, b0, k, c, ldc, bias, relu); return;
                case 5: Single<Rows5, TWeights>(a, lda, b0, k, c, ldc, bias, relu); return;
                case 6: Single<Rows6, TWeights>(a, lda, b0, k, c, ldc, bias, relu); return;
                case 7: Single<Rows7, TWeights>(a, lda, b0, k, c, ldc, bias, relu); return;
                case 8: Single<Rows8, TWeights>(a, lda, b0, k, c, ldc, bias, relu); return;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(rows), rows, "tile height must be 1..4 (two panels) or 1..8 (one panel)");
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pair<TRows, TWeights>(float* a, int lda, ushort* b0, ushort* b1, int k, float* c, int ldc, float* bias, bool relu)
        where TRows : struct, IRowCount
        where TWeights : struct, IHalfLanes
    {
        int r = TRows.Value;
        Vector512<int> mask = Vector512.Create(FieldMask);
        Vector512<float> rebias = Vector512.Create(Rebias);
        Vector512<float> q0 = Vector512.Load(bias + 0), q1 = Vector512.Load(bias + 16), q2 = Vector512.Load(bias + 32), q3 = Vector512.Load(bias + 48);
        Vector512<float> c00 = q0, c01 = q1, c02 = q2, c03 = q3, c10 = q0, c11 = q1, c12 = q2, c13 = q3, c20 = q0, c21 = q1, c22 = q2, c23 = q3, c30 = q0, c31 = q1, c32 = q2, c33 = q3;
        // One pointer per row, indexed by a native-int k: each broadcast is one instruction, with no index arithmetic.
        float* a0 = a, a1 = a + lda, a2 = a + (2 * lda), a3 = a + (3 * lda);
        for (nint kk = 0; kk < k; kk++)
        {
            Vector512<int> w0 = Vector512.Load((int*)b0);
            q0 = TWeights.Low(w0, mask, rebias);
            q1 = TWeights.High(w0, mask, rebias);
            Vector512<int> w1 = Vector512.Load((int*)b1);
            q2 = TWeights.Low(w1, mask, rebias);
            q3 = TWeights.High(w1, mask, rebias);
            Vector512<float> av;
            { av = Vector512.Create(a0[kk]); c00 = Vector512.FusedMultiplyAdd(av, q0, c00); c01 = Vector512.FusedMultiplyAdd(av, q1, c01); c02 = Vector512.FusedMultiplyAdd(av, q2, c02); c03 = Vector512.FusedMultiplyAdd(av, q3, c03); }
            if (r > 1) { av = Vector512.Create(a1[kk]); c10 = Vector512.FusedMultiplyAdd(av, q0, c10); c11 = Vector512.FusedMultiplyAdd(av, q1, c11); c12 = Vector512.FusedMultiplyAdd(av, q2, c12); c13 = Vector512.FusedMultiplyAdd(av, q3, c13); }
            if (r > 2) { av = Vector512.Create(a2[kk]); c20 = Vector512.FusedMultiplyAdd(av, q0, c20); c21 = Vector512.FusedMultiplyAdd(av, q1, c21); c22 = Vector512.FusedMultiplyAdd(av, q2, c22); c23 = Vector512.FusedMultiplyAdd(av, q3, c23); }
            if (r > 3) { av = Vector512.Create(a3[kk]); c30 = Vector512.FusedMultiplyAdd(av, q0, c30); c31 = Vector512.FusedMultiplyAdd(av, q1, c31); c32 = Vector512.FusedMultiplyAdd(av, q2, c32); c33 = Vector512.FusedMultiplyAdd(av, q3, c33); }
            b0 += W;
            b1 += W;
        }

        // MaxNative is one vmaxps; with the zero first a NaN sum stays NaN, as the fp32 tiles keep it.
        if (relu)
        {
            Vector512<float> z = Vector512<float>.Zero;
            { c00 = Vector512.MaxNative(z, c00); c01 = Vector512.MaxNative(z, c01); c02 = Vector512.MaxNative(z, c02); c03 = Vector512.MaxNative(z, c03); }
            if (r > 1) { c10 = Vector512.MaxNative(z, c10); c11 = Vector512.MaxNative(z, c11); c12 = Vector512.MaxNative(z, c12); c13 = Vector512.MaxNative(z, c13); }
            if (r > 2) { c20 = Vector512.MaxNative(z, c20); c21 = Vector512.MaxNative(z, c21); c22 = Vector512.MaxNative(z, c22); c23 = Vector512.MaxNative(z, c23); }
            if (r > 3) { c30 = Vector512.MaxNative(z, c30); c31 = Vector512.MaxNative(z, c31); c32 = Vector512.MaxNative(z, c32); c33 = Vector512.MaxNative(z, c33); }
        }

        { Vector512.Store(c00, c + (0 * ldc) + 0); Vector512.Store(c01, c + (0 * ldc) + 16); Vector512.Store(c02, c + (0 * ldc) + 32); Vector512.Store(c03, c + (0 * ldc) + 48); }
        if (r > 1) { Vector512.Store(c10, c + (1 * ldc) + 0); Vector512.Store(c11, c + (1 * ldc) + 16); Vector512.Store(c12, c + (1 * ldc) + 32); Vector512.Store(c13, c + (1 * ldc) + 48); }
        if (r > 2) { Vector512.Store(c20, c + (2 * ldc) + 0); Vector512.Store(c21, c + (2 * ldc) + 16); Vector512.Store(c22, c + (2 * ldc) + 32); Vector512.Store(c23, c + (2 * ldc) + 48); }
        if (r > 3) { Vector512.Store(c30, c + (3 * ldc) + 0); Vector512.Store(c31, c + (3 * ldc) + 16); Vector512.Store(c32, c + (3 * ldc) + 32); Vector512.Store(c33, c + (3 * ldc) + 48); }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Single<TRows, TWeights>(float* a, int lda, ushort* b0, int k, float* c, int ldc, float* bias, bool relu)
        where TRows : struct, IRowCount
        where TWeights : struct, IHalfLanes
    {
        int r = TRows.Value;
        Vector512<int> mask = Vector512.Create(FieldMask);
        Vector512<float> rebias = Vector512.Create(Rebias);
        Vector512<float> q0 = Vector512.Load(bias + 0), q1 = Vector512.Load(bias + 16);
        Vector512<float> c00 = q0, c01 = q1, c10 = q0, c11 = q1, c20 = q0, c21 = q1, c30 = q0, c31 = q1, c40 = q0, c41 = q1, c50 = q0, c51 = q1, c60 = q0, c61 = q1, c70 = q0, c71 = q1;
        // One pointer per row, indexed by a native-int k: each broadcast is one instruction, with no index arithmetic.
        float* a0 = a, a1 = a + lda, a2 = a + (2 * lda), a3 = a + (3 * lda), a4 = a + (4 * lda), a5 = a + (5 * lda), a6 = a + (6 * lda), a7 = a + (7 * lda);
        for (nint kk = 0; kk < k; kk++)
        {
            Vector512<int> w0 = Vector512.Load((int*)b0);
            q0 = TWeights.Low(w0, mask, rebias);
            q1 = TWeights.High(w0, mask, rebias);
            Vector512<float> av;
            { av = Vector512.Create(a0[kk]); c00 = Vector512.FusedMultiplyAdd(av, q0, c00); c01 = Vector512.FusedMultiplyAdd(av, q1, c01); }
            if (r > 1) { av = Vector512.Create(a1[kk]); c10 = Vector512.FusedMultiplyAdd(av, q0, c10); c11 = Vector512.FusedMultiplyAdd(av, q1, c11); }
            if (r > 2) { av = Vector512.Create(a2[kk]); c20 = Vector512.FusedMultiplyAdd(av, q0, c20); c21 = Vector512.FusedMultiplyAdd(av, q1, c21); }
            if (r > 3) { av = Vector512.Create(a3[kk]); c30 = Vector512.FusedMultiplyAdd(av, q0, c30); c31 = Vector512.FusedMultiplyAdd(av, q1, c31); }
            if (r > 4) { av = Vector512.Create(a4[kk]); c40 = Vector512.FusedMultiplyAdd(av, q0, c40); c41 = Vector512.FusedMultiplyAdd(av, q1, c41); }
            if (r > 5) { av = Vector512.Create(a5[kk]); c50 = Vector512.FusedMultiplyAdd(av, q0, c50); c51 = Vector512.FusedMultiplyAdd(av, q1, c51); }
            if (r > 6) { av = Vector512.Create(a6[kk]); c60 = Vector512.FusedMultiplyAdd(av, q0, c60); c61 = Vector512.FusedMultiplyAdd(av, q1, c61); }
            if (r > 7) { av = Vector512.Create(a7[kk]); c70 = Vector512.FusedMultiplyAdd(av, q0, c70); c71 = Vector512.FusedMultiplyAdd(av, q1, c71); }
            b0 += W;
        }

        // MaxNative is one vmaxps; with the zero first a NaN sum stays NaN, as the fp32 tiles keep it.
        if (relu)
        {
            Vector512<float> z = Vector512<float>.Zero;
            { c00 = Vector512.MaxNative(z, c00); c01 = Vector512.MaxNative(z, c01); }
            if (r > 1) { c10 = Vector512.MaxNative(z, c10); c11 = Vector512.MaxNative(z, c11); }
            if (r > 2) { c20 = Vector512.MaxNative(z, c20); c21 = Vector512.MaxNative(z, c21); }
            if (r > 3) { c30 = Vector512.MaxNative(z, c30); c31 = Vector512.MaxNative(z, c31); }
            if (r > 4) { c40 = Vector512.MaxNative(z, c40); c41 = Vector512.MaxNative(z, c41); }
            if (r > 5) { c50 = Vector512.MaxNative(z, c50); c51 = Vector512.MaxNative(z, c51); }
            if (r > 6) { c60 = Vector512.MaxNative(z, c60); c61 = Vector512.MaxNative(z, c61); }
            if (r > 7) { c70 = Vector512.MaxNative(z, c70); c71 = Vector512.MaxNative(z, c71); }
        }

        { Vector512.Store(c00, c + (0 * ldc) + 0); Vector512.Store(c01, c + (0 * ldc) + 16); }
        if (r > 1) { Vector512.Store(c10, c + (1 * ldc) + 0); Vector512.Store(c11, c + (1 * ldc) + 16); }
        if (r > 2) { Vector512.Store(c20, c + (2 * ldc) + 0); Vector512.Store(c21, c + (2 * ldc) + 16); }
        if (r > 3) { Vector512.Store(c30, c + (3 * ldc) + 0); Vector512.Store(c31, c + (3 * ldc) + 16); }
        if (r > 4) { Vector512.Store(c40, c + (4 * ldc) + 0); Vector512.Store(c41, c + (4 * ldc) + 16); }
        if (r > 5) { Vector512.Store(c50, c + (5 * ldc) + 0); Vector512.Store(c51, c + (5 * ldc) + 16); }
        if (r > 6) { Vector512.Store(c60, c + (6 * ldc) + 0); Vector512.Store(c61, c + (6 * ldc) + 16); }
        if (r > 7) { Vector512.Store(c70, c + (7 * ldc) + 0); Vector512.Store(c71, c + (7 * ldc) + 16); }
    }
}

/// <summary>How a tile turns a packed row of 32 halves (16 lanes, see <see cref="HalfWidening"/>) into two vectors of weights.</summary>
internal interface IHalfLanes
{
    /// <summary>Columns 0..15: the low halves of the 32-bit lanes.</summary>
    static abstract Vector512<float> Low(Vector512<int> lanes, Vector512<int> mask, Vector512<float> rebias);

    /// <summary>Columns 16..31: the high halves; the shift drops the low half's bits below the mask.</summary>
    static abstract Vector512<float> High(Vector512<int> lanes, Vector512<int> mask, Vector512<float> rebias);
}

/// <summary>The weights' true values: shift, mask, and a multiply by 2^112 per vector. Any input.</summary>
internal readonly struct RebiasedWeights : IHalfLanes
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Low(Vector512<int> lanes, Vector512<int> mask, Vector512<float> rebias) =>
        (Vector512.ShiftRightArithmetic(lanes << 16, 3) & mask).AsSingle() * rebias;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> High(Vector512<int> lanes, Vector512<int> mask, Vector512<float> rebias) =>
        (Vector512.ShiftRightArithmetic(lanes, 3) & mask).AsSingle() * rebias;
}

/// <summary>
/// The weights times 2^-112 (shift and mask only, no multiply), for an input already multiplied by 2^112: the
/// FMA's exact product is x·w all the same, so the sums round exactly as the fp32 tiles' do. The multiply it
/// saves runs on the FMA ports, which bound the tile from about 8 rows up.
/// </summary>
internal readonly struct PrescaledInput : IHalfLanes
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Low(Vector512<int> lanes, Vector512<int> mask, Vector512<float> rebias) =>
        (Vector512.ShiftRightArithmetic(lanes << 16, 3) & mask).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> High(Vector512<int> lanes, Vector512<int> mask, Vector512<float> rebias) =>
        (Vector512.ShiftRightArithmetic(lanes, 3) & mask).AsSingle();
}
