namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// One register-blocked tile routine per instruction set. The driver is generic over it so
/// the blocking loops are compiled once per kernel with the tile call bound statically.
/// </summary>
/// <remarks>
/// Contract shared by all kernels: <c>a</c> holds <c>rows</c> rows of A, row i at
/// <c>a + i * GemmLayout.ARowStride</c>, <c>kc</c> &lt;= that stride; <c>b</c> points at k-row 0 of a 64-byte aligned 32-column
/// panel (<c>b[k * 32 + j]</c>); <c>c</c> is the output tile with row stride <c>ldc</c> and
/// at least 32 writable columns. With <c>init</c> the sums start from <c>bias</c>, otherwise
/// from what <c>c</c> holds (a previous k block). Every output is accumulated in k order,
/// so blocking and thread splits never change a result.
/// </remarks>
internal interface IMicroKernel
{
    /// <summary>The tallest tile the kernel keeps in registers.</summary>
    static abstract int MaxRows { get; }

    /// <summary>The tallest tile <see cref="WideTile"/> accepts; 0 when there is none.</summary>
    static abstract int WideMaxRows { get; }

    static abstract unsafe void Tile(int rows, float* a, float* b, int kc, float* c, int ldc, float* bias, bool init, bool relu);

    /// <summary>A tile over two full panels (64 columns); <c>b1</c> is the second panel at the same k.</summary>
    static abstract unsafe void WideTile(int rows, float* a, float* b0, float* b1, int kc, float* c, int ldc, float* bias, bool init, bool relu);
}
