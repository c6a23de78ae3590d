namespace Recsys.DenseCompute.Gemm;

/// <summary>Portable tile for machines without AVX2; same packed layout and contract.</summary>
internal readonly struct ScalarMicroKernel : IMicroKernel
{
    public static int MaxRows => 4;

    public static int WideMaxRows => 0;

    public static unsafe void Tile(int rows, float* a, float* b, int kc, float* c, int ldc, float* bias, bool init, bool relu)
    {
        float* acc = stackalloc float[4 * GemmLayout.PanelWidth];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < GemmLayout.PanelWidth; j++)
                acc[(i * GemmLayout.PanelWidth) + j] = init ? bias[j] : c[(i * ldc) + j];
        }

        for (int k = 0; k < kc; k++)
        {
            float* bk = b + (k * GemmLayout.PanelWidth);
            for (int i = 0; i < rows; i++)
            {
                float ai = a[(i * GemmLayout.ARowStride) + k];
                float* row = acc + (i * GemmLayout.PanelWidth);
                for (int j = 0; j < GemmLayout.PanelWidth; j++) row[j] += ai * bk[j];
            }
        }

        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < GemmLayout.PanelWidth; j++)
            {
                float v = acc[(i * GemmLayout.PanelWidth) + j];
                c[(i * ldc) + j] = relu && v < 0f ? 0f : v;
            }
        }
    }

    public static unsafe void WideTile(int rows, float* a, float* b0, float* b1, int kc, float* c, int ldc, float* bias, bool init, bool relu) =>
        throw new NotSupportedException("the scalar kernel has no two-panel tile");
}
