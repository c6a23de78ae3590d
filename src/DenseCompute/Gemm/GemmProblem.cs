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

    /// <summary>The fewest rows a chunk gets when rows are split between threads.</summary>
    private const int RowsPerRowChunk = 128;

    /// <summary>
    /// How many chunks <paramref name="threads"/> threads claim. Tall batches get up to four
    /// per thread (at least 128 rows each, so each still reuses the weights it streams): on a
    /// shared machine a worker preempted mid-chunk then holds up only a small piece of the
    /// call. Panel splits stay one per thread, since every panel chunk packs all of A.
    /// </summary>
    public int ChunkCount(int threads) =>
        M >= RowsPerRowChunk * threads ? threads * Math.Clamp(M / (RowsPerRowChunk * threads), 1, 4) : threads;

    /// <summary>
    /// The share of the work that part <paramref name="index"/> of <paramref name="parts"/> does.
    /// A part that owns r rows streams all the weights for r multiply-adds per weight; with
    /// two threads sharing L3 bandwidth that stays compute-bound only from about 128 rows on
    /// (at 32-64 rows per part the top MLP ran 0.7x ORT on 2 threads). So tall batches split
    /// rows (each part packs only its rows of A) and shorter ones split output panels (each
    /// part streams only its share of the weights and packs all of A, which is small then).
    /// </summary>
    public void Partition(int parts, int index, out int m0, out int m1, out int p0, out int p1)
    {
        int panels = PanelCount;
        if (M >= RowsPerRowChunk * parts || panels < parts)
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
