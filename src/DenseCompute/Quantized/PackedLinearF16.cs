using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Quantized;

/// <summary>
/// A Linear layer whose weights are stored as IEEE half: half the bytes of <see cref="PackedLinear"/>,
/// in the same 32-column panels (columns paired within a row for shuffle-free widening, see <see cref="HalfWidening"/>). Forward widens one or two panels at a time into a per-thread
/// fp32 buffer (vector integer code, <see cref="HalfWidening"/>) and runs the fp32 register tiles on it,
/// so the result is bit for bit the fp32 GEMM of the fp16-rounded weights, with the same fused epilogues.
/// </summary>
/// <remarks>
/// A widened panel pair is K x 64 floats (256 KiB at K = 1024): it stays in L2 while the tiles stream it,
/// so the bytes that come from L3 or memory are the halves only. That is where the M &lt;= 16 gain comes from.
/// </remarks>
public sealed unsafe class PackedLinearF16 : IDenseLayer, IPartitionedLayer
{
    private const int W = GemmLayout.PanelWidth;

    private readonly ushort[] _panelStore;
    private readonly ushort* _panels;
    private readonly float[] _biasStore;
    private readonly float* _bias;

    [ThreadStatic]
    private static float[]? s_widened;

    [ThreadStatic]
    private static float[]? s_scaledInput;

    private PackedLinearF16(ushort[] panelStore, ushort* panels, float[] biasStore, float* bias, int outFeatures, int inFeatures, Activation activation)
    {
        _panelStore = panelStore;
        _panels = panels;
        _biasStore = biasStore;
        _bias = bias;
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
        Activation = activation;
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Activation Activation { get; }
    public LayerPrecision Precision => LayerPrecision.Fp16;

    /// <summary>Bytes of packed weights (halves, padding included).</summary>
    public long WeightBytes => (long)_panelStore.Length * sizeof(ushort);

    /// <summary>Packs fp32 weights (out x in, PyTorch order), rounding each to the nearest half.</summary>
    public static PackedLinearF16 Pack(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outFeatures, int inFeatures, Activation activation)
    {
        if (outFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(outFeatures), outFeatures, "a Linear layer needs at least one output feature");
        if (inFeatures < 0) throw new ArgumentOutOfRangeException(nameof(inFeatures), inFeatures, "in features cannot be negative");
        if (!Enum.IsDefined(activation)) throw new ArgumentOutOfRangeException(nameof(activation), activation, "unknown activation");
        if (weight.Length != (long)outFeatures * inFeatures) throw new ArgumentException($"weight has {weight.Length} values, expected {outFeatures} x {inFeatures}", nameof(weight));
        if (bias.Length != outFeatures) throw new ArgumentException($"bias has {bias.Length} values, expected {outFeatures}", nameof(bias));

        int panelCount = GemmLayout.PanelCount(outFeatures);
        long halves = (long)panelCount * inFeatures * W;
        if (halves + 32 > Array.MaxLength) throw new ArgumentException($"a {outFeatures} x {inFeatures} layer is too large to pack", nameof(weight));

        ushort[] panelStore = GC.AllocateArray<ushort>((int)halves + 32, pinned: true);
        ushort* panels = (ushort*)Aligned(Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(panelStore)));
        for (int o = 0; o < outFeatures; o++)
        {
            ushort* panel = panels + ((long)(o / W) * inFeatures * W);
            int j = o % W;
            ReadOnlySpan<float> row = weight.Slice(o * inFeatures, inFeatures);
            int slot = HalfWidening.Slot(j);
            for (int k = 0; k < inFeatures; k++) panel[((long)k * W) + slot] = ToHalfBits(row[k], o, k);
        }

        float[] biasStore = GC.AllocateArray<float>((panelCount * W) + 16, pinned: true);
        float* alignedBias = (float*)Aligned(Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(biasStore)));
        bias.CopyTo(new Span<float>(alignedBias, outFeatures));
        return new PackedLinearF16(panelStore, panels, biasStore, alignedBias, outFeatures, inFeatures, activation);
    }

    /// <summary>The half that <paramref name="value"/> rounds to (nearest, ties to even), as the layer stores it.</summary>
    public static float RoundToHalf(float value) => (float)(Half)value;

    /// <param name="maxThreads">Upper bound on threads; small problems run on the caller alone (the fp32 GEMM's policy).</param>
    public void Forward(ReadOnlySpan<float> input, int m, Span<float> output, int maxThreads = 1) =>
        Forward(input, m, output, GemmPaths.Best, maxThreads);

    internal void Forward(ReadOnlySpan<float> input, int m, Span<float> output, GemmPath path, int maxThreads = 1)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "batch size cannot be negative");
        if (input.Length < (long)m * InFeatures) throw new ArgumentException($"input has {input.Length} values, expected at least {m} x {InFeatures}", nameof(input));
        if (output.Length < (long)m * OutFeatures) throw new ArgumentException($"output has {output.Length} values, expected at least {m} x {OutFeatures}", nameof(output));
        if (!GemmPaths.IsSupported(path)) throw new PlatformNotSupportedException($"GEMM path {path} is not supported on this CPU");
        int threads = QuantizedWorkers.Threads(maxThreads, m, InFeatures, OutFeatures);
        if (m == 0) return;

        fixed (float* x = input)
        fixed (float* y = output)
        {
            var job = new QuantizedJob(this, x, y, null, m, default, (int)path);
            if (threads == 1) Part(job, 0, m, 0, GemmLayout.PanelCount(OutFeatures));
            else QuantizedWorkers.Run(job, InFeatures, OutFeatures, threads);
        }

        GC.KeepAlive(_panelStore);
        GC.KeepAlive(_biasStore);
    }

    /// <summary>
    /// Rows [m0, m1) x panels [p0, p1). The kernel (register widening or a widened buffer) is chosen by the
    /// whole batch's height, so a part computes its outputs exactly as the single-threaded call does.
    /// </summary>
    void IPartitionedLayer.RunPart(in QuantizedJob job, int m0, int m1, int p0, int p1) => Part(job, m0, m1, p0, p1);

    private void Part(in QuantizedJob job, int m0, int m1, int p0, int p1)
    {
        var path = (GemmPath)job.Path;
        int k = InFeatures, n = OutFeatures;
        if (job.M <= SmallBatch && k > 0 && path == GemmPath.Avx512)
        {
            ForwardSmallBatch(job.X + ((long)m0 * k), m1 - m0, job.Y + ((long)m0 * n), p0, p1);
        }
        else
        {
            float* widened = WideningBuffer((long)k * 2 * W);
            for (int q = p0; q < p1;)
            {
                // Pairs of full panels use the two-panel tile, as the fp32 driver does.
                int count = q + 1 < p1 && (q + 2) * W <= n ? 2 : 1;
                HalfWidening.Widen(_panels + ((long)q * k * W), widened, (long)count * k);
                // The driver finds panel p at Panels + p*K*32: offset the base so panel q lands on the buffer.
                var problem = new GemmProblem(job.X, job.Y, job.M, k, n, widened - ((long)q * k * W), _bias, Activation);
                GemmDriver.Run(problem, path, m0, m1, q, q + count);
                q += count;
            }
        }

        GC.KeepAlive(_panelStore);
        GC.KeepAlive(_biasStore);
    }

    /// <summary>
    /// Batches up to this size widen the halves in registers (<see cref="F16SmallBatchKernel"/>): they are
    /// bound by weight bytes, and a panel pair's halves (K x 128 bytes) stay in L2 for the next 4-row tile.
    /// Taller batches widen into a buffer once per panel pair and reuse it for every row tile.
    /// </summary>
    internal const int SmallBatch = 16;

    private void ForwardSmallBatch(float* x, int m, float* y, int p0, int p1)
    {
        int k = InFeatures, n = OutFeatures;
        // Up to 4 rows, two panels per tile keep 4 FMA chains per row in flight; taller batches take
        // 8-row tiles over one panel, so each widened weight feeds more FMAs and the halves are streamed fewer times.
        bool pairs = m <= F16SmallBatchKernel.MaxRows;
        int maxRows = pairs ? F16SmallBatchKernel.MaxRows : F16SmallBatchKernel.MaxRowsSingle;
        int tiles = (m + maxRows - 1) / maxRows;
        float* scratch = stackalloc float[(F16SmallBatchKernel.MaxRowsSingle * 2 * W) + 16];
        scratch = (float*)Aligned(scratch);
        bool relu = Activation == Activation.Relu;
        // Scaling the m x k input once (m·k multiplies) saves a multiply per widened weight vector (m·k·n/16 / rows
        // per tile), which would run on the FMA ports; inputs too large to scale keep the per-weight multiply.
        float* scaled = ThreadBuffer(ref s_scaledInput, (long)m * k);
        bool prescaled = HalfWidening.ScaleInput(x, (long)m * k, scaled);
        if (prescaled) x = scaled;
        for (int q = p0; q < p1;)
        {
            int count = pairs && q + 1 < p1 && (q + 2) * W <= n ? 2 : 1;
            int cols = Math.Min(count * W, n - (q * W));
            ushort* b0 = _panels + ((long)q * k * W);
            for (int t = 0, row = 0; t < tiles; t++)
            {
                int r = (m / tiles) + (t < m % tiles ? 1 : 0);
                float* c = y + ((long)row * n) + (q * W);
                // A partial last panel goes through scratch: the tile always writes 32 columns.
                bool partial = cols < count * W;
                F16SmallBatchKernel.Tile(r, count, x + ((long)row * k), k, b0, b0 + ((long)k * W), k, partial ? scratch : c, partial ? count * W : n, _bias + (q * W), relu, prescaled);
                if (partial)
                {
                    for (int i = 0; i < r; i++) new ReadOnlySpan<float>(scratch + (i * count * W), cols).CopyTo(new Span<float>(c + ((long)i * n), cols));
                }

                if (Activation == Activation.Sigmoid)
                {
                    for (int i = 0; i < r; i++)
                    {
                        var span = new Span<float>(c + ((long)i * n), cols);
                        System.Numerics.Tensors.TensorPrimitives.Sigmoid(span, span);
                    }
                }

                row += r;
            }

            q += count;
        }
    }

    private static ushort ToHalfBits(float w, int o, int k)
    {
        Half h = (Half)w;
        if (!Half.IsFinite(h)) throw new ArgumentException($"weight[{o}, {k}] = {w} has no finite fp16 value (|w| must be <= 65504)", "weight");
        return BitConverter.HalfToUInt16Bits(h);
    }

    private static float* WideningBuffer(long floats) => ThreadBuffer(ref s_widened, floats);

    /// <summary>A per-thread pinned buffer of at least <paramref name="floats"/>, 64-byte aligned; grown, never shrunk.</summary>
    private static float* ThreadBuffer(ref float[]? slot, long floats)
    {
        float[]? buffer = slot;
        if (buffer is null || buffer.Length < floats + 16)
        {
            buffer = GC.AllocateUninitializedArray<float>((int)Math.Min(Array.MaxLength, floats + 16), pinned: true);
            slot = buffer;
        }

        return (float*)Aligned(Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)));
    }

    private static void* Aligned(void* p) => (void*)(((nuint)p + 63) & ~(nuint)63);
}
