using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// The cache-blocking loops around the register tiles: K blocks of 256, M blocks of
/// packed A, then panels, then row tiles.
/// </summary>
internal static unsafe class GemmDriver
{
    private const int W = GemmLayout.PanelWidth;

    /// <summary>Computes rows [m0, m1) x panels [p0, p1) of the problem's output.</summary>
    public static void Run(in GemmProblem p, GemmPath path, int m0, int m1, int p0, int p1)
    {
        switch (path)
        {
            case GemmPath.Avx512: Run<Avx512MicroKernel>(p, m0, m1, p0, p1); break;
            case GemmPath.Avx2: Run<Avx2MicroKernel>(p, m0, m1, p0, p1); break;
            default: Run<ScalarMicroKernel>(p, m0, m1, p0, p1); break;
        }
    }

    private static void Run<TK>(in GemmProblem p, int m0, int m1, int p0, int p1)
        where TK : struct, IMicroKernel
    {
        if (m1 <= m0 || p1 <= p0) return;
        int k = p.K, n = p.N, maxRows = TK.MaxRows;
        if (k == 0)
        {
            WriteBiasOnly(p, m0, m1, p0, p1);
            return;
        }

        int rows = m1 - m0;
        const int S = GemmLayout.ARowStride;
        int kcMax = Math.Min(k, GemmLayout.KBlock);
        int mcMax = GemmLayout.TilesPerMBlock * maxRows;
        int mBlocks = (rows + mcMax - 1) / mcMax;
        float* shared = p.PackedInput;
        int packFloats = shared != null ? 0 : Math.Min(rows, mcMax) * S;
        float* packed = GemmWorkspace.Rent(packFloats + (maxRows * W));
        float* scratch = packed + packFloats;
        bool relu = p.Activation == Activation.Relu;
        bool sigmoid = p.Activation == Activation.Sigmoid;

        for (int k0 = 0; k0 < k; k0 += kcMax)
        {
            int kc = Math.Min(kcMax, k - k0);
            bool first = k0 == 0, last = k0 + kc == k;
            // M blocks are dealt evenly, so a tall batch never ends in a sliver of a block.
            for (int block = 0, mc0 = m0; block < mBlocks; block++)
            {
                int mc = EvenShare(rows, mBlocks, block);
                int tiles = (mc + maxRows - 1) / maxRows;
                float* blockA = shared != null ? shared + (((long)(k0 / kcMax) * p.M) + mc0) * S : packed;
                if (shared == null) PackA(p.Input + ((long)mc0 * k) + k0, k, mc, kc, packed);

                for (int q = p0; q < p1;)
                {
                    // Two full panels at once let short tiles keep enough FMA chains in flight.
                    bool pair = TK.WideMaxRows > 0 && q + 1 < p1 && (q + 2) * W <= n;
                    float* b0 = p.Panels + ((long)q * k * W) + ((long)k0 * W);
                    float* bias = p.Bias + (q * W);
                    float* a = blockA;
                    int row = mc0;
                    for (int t = 0; t < tiles; t++)
                    {
                        int r = EvenShare(mc, tiles, t);
                        float* c = p.Output + ((long)row * n) + (q * W);
                        if (pair)
                        {
                            float* b1 = b0 + ((long)k * W);
                            if (r <= TK.WideMaxRows)
                            {
                                TK.WideTile(r, a, b0, b1, kc, c, n, bias, first, relu && last);
                            }
                            else
                            {
                                TK.Tile(r, a, b0, kc, c, n, bias, first, relu && last);
                                TK.Tile(r, a, b1, kc, c + W, n, bias + W, first, relu && last);
                            }
                        }
                        else if ((q + 1) * W <= n)
                        {
                            TK.Tile(r, a, b0, kc, c, n, bias, first, relu && last);
                        }
                        else
                        {
                            PartialPanelTile<TK>(r, a, b0, kc, c, n, n - (q * W), bias, first, relu && last, scratch);
                        }

                        if (sigmoid && last) Sigmoid(c, r, n, Math.Min(pair ? 2 * W : W, n - (q * W)));
                        a += r * S;
                        row += r;
                    }

                    q += pair ? 2 : 1;
                }

                mc0 += mc;
            }
        }
    }

    /// <summary>Share <paramref name="t"/> when <paramref name="rows"/> rows are dealt evenly to <paramref name="tiles"/> tiles or blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int EvenShare(int rows, int tiles, int t) => (rows / tiles) + (t < rows % tiles ? 1 : 0);

    /// <summary>Floats <see cref="PackAll"/> writes for <paramref name="p"/>.</summary>
    public static long PackedInputFloats(in GemmProblem p) =>
        (long)((p.K + GemmLayout.KBlock - 1) / GemmLayout.KBlock) * p.M * GemmLayout.ARowStride;

    /// <summary>Packs all of A in the layout of <see cref="GemmProblem.PackedInput"/>.</summary>
    public static void PackAll(in GemmProblem p, float* dst)
    {
        for (int k0 = 0, kb = 0; k0 < p.K; k0 += GemmLayout.KBlock, kb++)
        {
            PackA(p.Input + k0, p.K, p.M, Math.Min(GemmLayout.KBlock, p.K - k0), dst + ((long)kb * p.M * GemmLayout.ARowStride));
        }
    }

    /// <summary>Copies a rows x kc block of row-major A to rows of stride <see cref="GemmLayout.ARowStride"/>.</summary>
    private static void PackA(float* src, int lda, int rows, int kc, float* dst)
    {
        for (int i = 0; i < rows; i++)
            new ReadOnlySpan<float>(src + ((long)i * lda), kc).CopyTo(new Span<float>(dst + (i * GemmLayout.ARowStride), kc));
    }

    /// <summary>The last panel of an output width that is not a multiple of 32: run the tile on a scratch copy.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void PartialPanelTile<TK>(int r, float* a, float* b, int kc, float* c, int ldc, int cols, float* bias, bool init, bool relu, float* scratch)
        where TK : struct, IMicroKernel
    {
        if (!init)
        {
            for (int i = 0; i < r; i++)
                new ReadOnlySpan<float>(c + ((long)i * ldc), cols).CopyTo(new Span<float>(scratch + (i * W), cols));
        }

        TK.Tile(r, a, b, kc, scratch, W, bias, init, relu);
        for (int i = 0; i < r; i++)
            new ReadOnlySpan<float>(scratch + (i * W), cols).CopyTo(new Span<float>(c + ((long)i * ldc), cols));
    }

    private static void Sigmoid(float* c, int rows, int ldc, int cols)
    {
        for (int i = 0; i < rows; i++)
        {
            var row = new Span<float>(c + ((long)i * ldc), cols);
            TensorPrimitives.Sigmoid(row, row);
        }
    }

    /// <summary>K = 0: the product is empty, so each output is the activated bias.</summary>
    private static void WriteBiasOnly(in GemmProblem p, int m0, int m1, int p0, int p1)
    {
        int c0 = p0 * W, c1 = Math.Min(p.N, p1 * W);
        for (int i = m0; i < m1; i++)
        {
            var row = new Span<float>(p.Output + ((long)i * p.N) + c0, c1 - c0);
            new ReadOnlySpan<float>(p.Bias + c0, c1 - c0).CopyTo(row);
            if (p.Activation == Activation.Relu) TensorPrimitives.Max(row, 0f, row);
            else if (p.Activation == Activation.Sigmoid) TensorPrimitives.Sigmoid(row, row);
        }
    }
}
