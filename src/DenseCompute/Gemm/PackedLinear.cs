using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// A Linear layer y = act(x · Wᵀ + b) with W stored out x in as PyTorch stores it,
/// packed once at load into the layout the GEMM kernel streams.
/// </summary>
/// <remarks>
/// Packed layout: output columns in panels of 32; panel p holds, for k = 0..In-1, the 32
/// weights W[p*32 + j, k] contiguously (zeros past Out), so the kernel reads one cache-line
/// pair per k. Panels and bias live in pinned, 64-byte aligned arrays.
/// </remarks>
public sealed unsafe class PackedLinear
{
    private readonly float[] _panelStore;
    private readonly float[] _biasStore;
    private readonly float* _panels;
    private readonly float* _bias;

    private PackedLinear(float[] panelStore, float* panels, float[] biasStore, float* bias, int outFeatures, int inFeatures, Activation activation)
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

    public static PackedLinear Pack(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outFeatures, int inFeatures, Activation activation)
    {
        if (outFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(outFeatures), outFeatures, "a Linear layer needs at least one output feature");
        if (inFeatures < 0) throw new ArgumentOutOfRangeException(nameof(inFeatures), inFeatures, "in features cannot be negative");
        if (!Enum.IsDefined(activation)) throw new ArgumentOutOfRangeException(nameof(activation), activation, "unknown activation");
        if (weight.Length != (long)outFeatures * inFeatures) throw new ArgumentException($"weight has {weight.Length} values, expected {outFeatures} x {inFeatures}", nameof(weight));
        if (bias.Length != outFeatures) throw new ArgumentException($"bias has {bias.Length} values, expected {outFeatures}", nameof(bias));

        const int W = GemmLayout.PanelWidth;
        int panelCount = GemmLayout.PanelCount(outFeatures);
        long panelFloats = (long)panelCount * inFeatures * W;
        if (panelFloats + 16 > Array.MaxLength) throw new ArgumentException($"a {outFeatures} x {inFeatures} layer is too large to pack", nameof(weight));

        // Zero-filled (not uninitialized): the padding columns of the last panel must be 0.
        float[] panelStore = GC.AllocateArray<float>((int)panelFloats + 16, pinned: true);
        float* panels = AlignedStart(panelStore);
        for (int p = 0; p < panelCount; p++)
        {
            float* panel = panels + ((long)p * inFeatures * W);
            int cols = Math.Min(W, outFeatures - (p * W));
            for (int j = 0; j < cols; j++)
            {
                ReadOnlySpan<float> wrow = weight.Slice((p * W + j) * inFeatures, inFeatures);
                for (int k = 0; k < inFeatures; k++) panel[(k * W) + j] = wrow[k];
            }
        }

        float[] biasStore = GC.AllocateArray<float>((panelCount * W) + 16, pinned: true);
        float* alignedBias = AlignedStart(biasStore);
        bias.CopyTo(new Span<float>(alignedBias, outFeatures));
        return new PackedLinear(panelStore, panels, biasStore, alignedBias, outFeatures, inFeatures, activation);
    }

    /// <summary>output[m x Out] = act(input[m x In] · Wᵀ + b).</summary>
    /// <param name="maxThreads">Upper bound on threads; small problems run on the caller alone.</param>
    public void Forward(ReadOnlySpan<float> input, int m, Span<float> output, int maxThreads = 1) =>
        Forward(input, m, output, maxThreads, GemmPaths.Best);

    /// <summary>Forward on a chosen instruction set, so tests can cover every path on one machine.</summary>
    internal void Forward(ReadOnlySpan<float> input, int m, Span<float> output, int maxThreads, GemmPath path)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "batch size cannot be negative");
        if (input.Length < (long)m * InFeatures) throw new ArgumentException($"input has {input.Length} values, expected at least {m} x {InFeatures}", nameof(input));
        if (output.Length < (long)m * OutFeatures) throw new ArgumentException($"output has {output.Length} values, expected at least {m} x {OutFeatures}", nameof(output));
        if (maxThreads < 1) throw new ArgumentOutOfRangeException(nameof(maxThreads), maxThreads, "need at least one thread");
        if (!GemmPaths.IsSupported(path)) throw new PlatformNotSupportedException($"GEMM path {path} is not supported on this CPU");
        if (m == 0) return;

        int threads = Math.Min(maxThreads, Environment.ProcessorCount);
        if ((long)m * InFeatures * OutFeatures < GemmLayout.ParallelThreshold) threads = 1;

        fixed (float* x = input)
        fixed (float* y = output)
        {
            var problem = new GemmProblem(x, y, m, InFeatures, OutFeatures, _panels, _bias, Activation);
            if (threads == 1) GemmDriver.Run(problem, path, 0, m, 0, problem.PanelCount);
            else GemmWorkers.Run(problem, path, threads);
        }

        // The pinned stores must outlive the raw pointers used above.
        GC.KeepAlive(_panelStore);
        GC.KeepAlive(_biasStore);
    }

    private static float* AlignedStart(float[] pinned)
    {
        nuint start = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));
        return (float*)((start + 63) & ~(nuint)63);
    }
}
