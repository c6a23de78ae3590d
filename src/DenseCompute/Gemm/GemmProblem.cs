namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// One Forward call as raw pointers, so it can be handed to a worker thread without
/// allocating; the caller keeps the spans pinned until every worker is done.
/// </summary>
internal readonly unsafe struct GemmProblem
{
    public GemmProblem(float* input, float* output, int m, int inFeatures, int outFeatures, float* panels, float* bias, Activation activation)
    {
        Input = input;
        Output = output;
        M = m;
        K = inFeatures;
        N = outFeatures;
        Panels = panels;
        Bias = bias;
        Activation = activation;
    }

    public float* Input { get; }
    public float* Output { get; }
    public int M { get; }
    public int K { get; }
    public int N { get; }

    /// <summary>Packed weights: panel p is K rows of 32 floats at <c>Panels + p * K * 32</c>.</summary>
    public float* Panels { get; }

    /// <summary>Bias padded with zeros to a whole number of panels.</summary>
    public float* Bias { get; }

    public Activation Activation { get; }

    public int PanelCount => GemmLayout.PanelCount(N);

    /// <summary>
    /// The share of the work that part <paramref name="index"/> of <paramref name="parts"/> does.
    /// Split rows whenever each part still gets 8 (a tile that keeps 16 accumulators busy):
    /// parts then re-read the same weights, which stay cached, instead of each packing all of
    /// A again. Shorter batches split output panels, so each part streams only its share of
    /// the weights (the GEMV case).
    /// </summary>
    public void Partition(int parts, int index, out int m0, out int m1, out int p0, out int p1)
    {
        int panels = PanelCount;
        if (M >= 8 * parts || panels < parts)
        {
            m0 = (int)((long)M * index / parts);
            m1 = (int)((long)M * (index + 1) / parts);
            p0 = 0;
            p1 = panels;
        }
        else
        {
            m0 = 0;
            m1 = M;
            p0 = (int)((long)panels * index / parts);
            p1 = (int)((long)panels * (index + 1) / parts);
        }
    }
}
