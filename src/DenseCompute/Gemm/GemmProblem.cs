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
    /// Packed A shared by every chunk of a panel split (null: each chunk packs its own rows):
    /// K block kb holds rows 0..M-1 at stride <see cref="GemmLayout.ARowStride"/> from
    /// <c>PackedInput + kb * M * ARowStride</c>.
    /// </summary>
    public float* PackedInput { get; private init; }

    public GemmProblem WithPackedInput(float* packed) => this with { PackedInput = packed };

    /// <summary>The fewest rows a chunk gets when rows are split between threads.</summary>
    private const int RowsPerRowChunk = 128;

    /// <summary>
    /// Chunks per thread of a row split. 4 (smaller chunks, so a slowed thread holds up less)
    /// measured 0.54-0.95x ORT on 2 threads at the bottom/64-256 and top/1-256 shapes on an idle
    /// machine, 1 measured 0.66-1.07x there (bench/RESULTS-gemm.md): each extra row chunk repacks A
    /// and re-streams the panels, and costs more than the balance it buys.
    /// </summary>
    private const int ChunksPerThread = 1;

    /// <summary>
    /// Chunks per thread a panel split may use (default 1). Panel chunks share A and stream disjoint
    /// panels, so finer ones cost only a claim each; they let a late worker still take a share
    /// (<see cref="ChunkWorkers"/>).
    /// </summary>
    public int PanelChunksPerThread { get; private init; } = 1;

    public GemmProblem WithPanelChunksPerThread(int chunks) => this with { PanelChunksPerThread = Math.Max(1, chunks) };

    /// <summary>
    /// How the work of <paramref name="threads"/> threads is cut: a grid of row parts x panel parts.
    /// A part that owns r rows streams its panels once for r multiply-adds per weight; with two
    /// threads sharing L3 bandwidth that stays compute-bound only from about 128 rows on (at 32-64
    /// rows per part the top MLP ran 0.7x ORT on 2 threads). So tall batches split rows into
    /// <see cref="ChunksPerThread"/> chunks per thread, shorter ones split output panels only, into
    /// up to <see cref="PanelChunksPerThread"/> chunks per thread. Panel parts are cut on panel
    /// pairs, which the short-tile kernel consumes two at a time.
    /// </summary>
    public void Grid(int threads, out int rowParts, out int panelParts)
    {
        int panels = PanelCount;
        rowParts = M >= RowsPerRowChunk * threads ? threads * Math.Clamp(M / (RowsPerRowChunk * threads), 1, ChunksPerThread) : 1;
        if (rowParts == 1 && panels < threads) rowParts = threads; // too few panels to share: split rows however few
        int most = PanelUnits(threads, out _);
        // Row parts pack their own rows of A for every panel part: keep >= 4 panels (128 outputs)
        // per part so each packed value still feeds >= 128 multiply-adds.
        if (rowParts > 1) most = Math.Min(most, Math.Max(1, panels / 4));
        int target = (rowParts == 1 ? PanelChunksPerThread : ChunksPerThread) * threads;
        panelParts = Math.Clamp(target / rowParts, 1, most);
    }

    /// <summary>Panels are dealt in pairs when there are enough pairs for every thread, else singly.</summary>
    private int PanelUnits(int threads, out int unit)
    {
        int panels = PanelCount;
        unit = (panels + 1) / 2 >= threads ? 2 : 1;
        return (panels + unit - 1) / unit;
    }

    /// <summary>How many chunks <paramref name="threads"/> threads claim.</summary>
    public int ChunkCount(int threads)
    {
        Grid(threads, out int rowParts, out int panelParts);
        return rowParts * panelParts;
    }

    /// <summary>True when every chunk covers all rows, so A is packed once and shared.</summary>
    public bool SharesInput(int threads)
    {
        Grid(threads, out int rowParts, out int panelParts);
        return rowParts == 1 && panelParts > 1;
    }

    /// <summary>The rows and panels chunk <paramref name="index"/> of <see cref="ChunkCount"/>(<paramref name="threads"/>) computes.</summary>
    public void Partition(int threads, int index, out int m0, out int m1, out int p0, out int p1)
    {
        Grid(threads, out int rowParts, out int panelParts);
        int row = index / panelParts, part = index % panelParts;
        m0 = (int)((long)M * row / rowParts);
        m1 = (int)((long)M * (row + 1) / rowParts);
        int panels = PanelCount, units = PanelUnits(threads, out int unit);
        p0 = Math.Min(panels, unit * (int)((long)units * part / panelParts));
        p1 = Math.Min(panels, unit * (int)((long)units * (part + 1) / panelParts));
    }
}
