using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Quantized;

/// <summary>The instruction set an int8 Forward runs on; tests force each one.</summary>
internal enum Int8Path
{
    Scalar,
    Vnni,
    Madd16,
}

/// <summary>
/// A Linear layer in int8: u8 activations (per batch, dynamic, asymmetric) x s8 weights (per output
/// channel, symmetric), int32 sums, then y = act(sa · sw[n] · (acc - zp · Σ_k q[n, k]) + b[n]) in fp32.
/// Weights are quantized and packed once here; the zero-point correction comes from row sums computed then.
/// </summary>
public sealed unsafe class PackedLinearInt8 : IDenseLayer, IPartitionedLayer
{
    private const int W = 32;

    private readonly Int8Weights _weights;
    private readonly sbyte[] _panelStore;
    private readonly sbyte* _panels;
    private readonly float[] _floatStore; // scales then bias, each padded to whole panels
    private readonly float* _scale;
    private readonly float* _bias;
    private readonly int[] _rowSumStore;
    private readonly int* _rowSum;
    private readonly int _groups;

    [ThreadStatic]
    private static byte[]? s_codes;

    private PackedLinearInt8(Int8Weights weights, ReadOnlySpan<float> bias, Activation activation, Int8Kernel kernel, bool inputNonNegative)
    {
        _weights = weights;
        OutFeatures = weights.Out;
        InFeatures = weights.In;
        Activation = activation;
        Kernel = kernel;
        InputNonNegative = inputNonNegative;
        _groups = weights.PaddedIn / 4;
        int panelCount = (weights.Out + W - 1) / W;
        int cols = panelCount * W;

        _panelStore = GC.AllocateArray<sbyte>((int)((long)panelCount * _groups * 128) + 64, pinned: true);
        _panels = (sbyte*)Aligned(Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_panelStore)));
        Int8WeightPacking.Layout(weights, _panels);

        _floatStore = GC.AllocateArray<float>((2 * cols) + 32, pinned: true);
        _scale = (float*)Aligned(Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_floatStore)));
        _bias = _scale + cols;
        weights.Scale.CopyTo(new Span<float>(_scale, cols));
        bias.CopyTo(new Span<float>(_bias, cols));

        _rowSumStore = GC.AllocateArray<int>(cols + 16, pinned: true);
        _rowSum = (int*)Aligned(Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_rowSumStore)));
        weights.RowSum.CopyTo(new Span<int>(_rowSum, cols));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Activation Activation { get; }
    public LayerPrecision Precision => LayerPrecision.Int8;

    /// <summary>The packing (and so the kernel) chosen at pack time.</summary>
    public Int8Kernel Kernel { get; }

    public bool InputNonNegative { get; }

    /// <summary>Groups of 4 k the 16-bit kernel adds in 16 bits before widening (1 for the VNNI packing).</summary>
    public int Chunk => _weights.Chunk;

    /// <summary>Non-zero entries of the sparse 32-bit part.</summary>
    public int OutlierCount => _weights.OutlierK.Length;

    public double OutlierDensity => InFeatures == 0 ? 0 : OutlierCount / ((double)OutFeatures * InFeatures);

    /// <summary>Bytes of packed dense weights.</summary>
    public long WeightBytes => _panelStore.Length;

    /// <summary>Per-output-channel weight scales (w ≈ scale[n] · q[n, k]).</summary>
    public ReadOnlySpan<float> WeightScales => _weights.Scale;

    /// <summary>The kernel <see cref="Int8Kernel.Auto"/> picks on this CPU.</summary>
    public static Int8Kernel BestKernel =>
        Avx512BW.IsSupported && Vector512.IsHardwareAccelerated ? Int8Kernel.Madd16
        : AvxVnni.IsSupported ? Int8Kernel.Vnni
        : Int8Kernel.Vnni; // the scalar path runs the VNNI packing: 8-bit weights, no outliers

    public static PackedLinearInt8 Pack(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outFeatures, int inFeatures, Activation activation, Int8Options? options = null)
    {
        options ??= new Int8Options();
        if (outFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(outFeatures), outFeatures, "a Linear layer needs at least one output feature");
        if (inFeatures < 0) throw new ArgumentOutOfRangeException(nameof(inFeatures), inFeatures, "in features cannot be negative");
        if (!Enum.IsDefined(activation)) throw new ArgumentOutOfRangeException(nameof(activation), activation, "unknown activation");
        if (weight.Length != (long)outFeatures * inFeatures) throw new ArgumentException($"weight has {weight.Length} values, expected {outFeatures} x {inFeatures}", nameof(weight));
        if (bias.Length != outFeatures) throw new ArgumentException($"bias has {bias.Length} values, expected {outFeatures}", nameof(bias));
        if ((long)GemmLayout.PanelCount(outFeatures) * (((inFeatures + 7) & ~7) / 4) * 128 + 64 > Array.MaxLength) throw new ArgumentException($"a {outFeatures} x {inFeatures} layer is too large to pack", nameof(weight));
        Int8Kernel kernel = options.Kernel == Int8Kernel.Auto ? BestKernel : options.Kernel;
        Int8Weights q = Int8WeightPacking.Quantize(weight, outFeatures, inFeatures, kernel, options);
        return new PackedLinearInt8(q, bias, activation, kernel, options.InputNonNegative);
    }

    /// <param name="maxThreads">Upper bound on threads; small problems run on the caller alone (the fp32 GEMM's policy).</param>
    public void Forward(ReadOnlySpan<float> input, int m, Span<float> output, int maxThreads = 1) =>
        Forward(input, m, output, BestPath(Kernel), maxThreads);

    internal static Int8Path BestPath(Int8Kernel kernel) => kernel switch
    {
        Int8Kernel.Madd16 when Avx512BW.IsSupported && Vector512.IsHardwareAccelerated => Int8Path.Madd16,
        Int8Kernel.Vnni when AvxVnni.IsSupported => Int8Path.Vnni,
        _ => Int8Path.Scalar,
    };

    internal static bool IsSupported(Int8Path path) => path switch
    {
        Int8Path.Madd16 => Avx512BW.IsSupported,
        Int8Path.Vnni => AvxVnni.IsSupported,
        _ => true,
    };

    internal void Forward(ReadOnlySpan<float> input, int m, Span<float> output, Int8Path path, int maxThreads = 1)
    {
        Validate(input, m, output, path);
        int threads = QuantizedWorkers.Threads(maxThreads, m, InFeatures, OutFeatures);
        if (m == 0) return;
        ReadOnlySpan<float> x = input[..(m * InFeatures)];
        ClipRange range = ActivationQuantizer.Range(x, InputNonNegative);
        // A NaN or Inf input makes the range NaN or infinite, the scale NaN, and so every output NaN, as fp32 would.
        ActivationCode code = ActivationCode.For(range);
        int lda = _weights.PaddedIn;
        byte* qa = Codes((long)m * lda);
        fixed (float* px = input)
        fixed (float* py = output)
        {
            // Quantized once over the whole batch on the caller: every part then shares the scale, so threads change no bit.
            ActivationQuantizer.Quantize(px, m, InFeatures, code, qa, lda);
            if (threads == 1) Run(qa, 0, m, 0, GemmLayout.PanelCount(OutFeatures), path, code, py, null);
            else QuantizedWorkers.Run(new QuantizedJob(this, px, py, qa, m, code, (int)path), InFeatures, OutFeatures, threads);
        }

        GC.KeepAlive(_panelStore);
        GC.KeepAlive(_floatStore);
        GC.KeepAlive(_rowSumStore);
    }

    /// <summary>The exact int32 sums Σ_k qa[i, k] · q[n, k] for given u8 codes (rows of InFeatures), before requantization.</summary>
    internal void Accumulate(ReadOnlySpan<byte> codes, int m, Span<int> acc, Int8Path path)
    {
        if (!IsSupported(path)) throw new PlatformNotSupportedException($"int8 path {path} is not supported on this CPU");
        if (path == Int8Path.Madd16 && Kernel != Int8Kernel.Madd16) throw new InvalidOperationException("the 16-bit kernel needs the Madd16 packing (7-bit main weights)");
        int lda = _weights.PaddedIn;
        byte* qa = Codes((long)m * lda);
        for (int i = 0; i < m; i++)
        {
            var row = new Span<byte>(qa + ((long)i * lda), lda);
            row.Clear();
            codes.Slice(i * InFeatures, InFeatures).CopyTo(row);
        }

        fixed (int* pacc = acc)
        {
            Run(qa, 0, m, 0, GemmLayout.PanelCount(OutFeatures), path, default, null, pacc);
        }
    }

    /// <summary>The quantized weight q[n, k] = main + outlier, as the kernels multiply it.</summary>
    internal int QuantizedWeight(int n, int k)
    {
        int q = _weights.Main[((long)n * _weights.PaddedIn) + k];
        for (int e = _weights.OutlierStart[n]; e < _weights.OutlierStart[n + 1]; e++)
        {
            if (_weights.OutlierK[e] == k) q += _weights.OutlierValue[e];
        }

        return q;
    }

    private void Validate(ReadOnlySpan<float> input, int m, Span<float> output, Int8Path path)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "batch size cannot be negative");
        if (input.Length < (long)m * InFeatures) throw new ArgumentException($"input has {input.Length} values, expected at least {m} x {InFeatures}", nameof(input));
        if (output.Length < (long)m * OutFeatures) throw new ArgumentException($"output has {output.Length} values, expected at least {m} x {OutFeatures}", nameof(output));
        if (!IsSupported(path)) throw new PlatformNotSupportedException($"int8 path {path} is not supported on this CPU");
        if (path == Int8Path.Madd16 && Kernel != Int8Kernel.Madd16) throw new InvalidOperationException("the 16-bit kernel needs the Madd16 packing (7-bit main weights)");
    }

    /// <summary>
    /// Panels outer, row tiles inner: a 32-column panel (K x 32 bytes) stays in L1 while every row of the
    /// batch passes over it. Each tile's int32 sums get the sparse outliers added, then either go to
    /// <paramref name="rawAcc"/> (tests) or through the requantization epilogue into <paramref name="y"/>.
    /// </summary>
    void IPartitionedLayer.RunPart(in QuantizedJob job, int m0, int m1, int p0, int p1)
    {
        Run(job.Codes, m0, m1, p0, p1, (Int8Path)job.Path, job.Code, job.Y, null);
        GC.KeepAlive(_panelStore);
        GC.KeepAlive(_floatStore);
        GC.KeepAlive(_rowSumStore);
    }

    /// <summary>Rows [m0, m1) x panels [p0, p1) of the product; the codes and outputs are the whole batch's.</summary>
    private void Run(byte* qa, int m0, int m1, int p0, int p1, Int8Path path, ActivationCode code, float* y, int* rawAcc)
    {
        int n = OutFeatures, lda = _weights.PaddedIn, m = m1 - m0;
        int maxRows = path switch { Int8Path.Madd16 => Madd16Int8Kernel.MaxRows, Int8Path.Vnni => VnniInt8Kernel.MaxRows, _ => ScalarInt8Kernel.MaxRows };
        int* tile = stackalloc int[(Madd16Int8Kernel.MaxRows * W) + 16];
        tile = (int*)Aligned(tile);
        int tiles = (m + maxRows - 1) / maxRows;
        for (int p = p0; p < p1; p++)
        {
            sbyte* panel = _panels + ((long)p * _groups * 128);
            int cols = Math.Min(W, n - (p * W));
            for (int t = 0, row = m0; t < tiles; t++)
            {
                int r = (m / tiles) + (t < m % tiles ? 1 : 0);
                byte* a = qa + ((long)row * lda);
                switch (path)
                {
                    case Int8Path.Madd16: Madd16Int8Kernel.Tile(r, a, lda, panel, _groups, tile, _weights.Chunk); break;
                    case Int8Path.Vnni: VnniInt8Kernel.Tile(r, a, lda, panel, _groups, tile); break;
                    default: ScalarInt8Kernel.Tile(r, a, lda, panel, _groups, tile); break;
                }

                if (_weights.OutlierK.Length > 0) AddOutliers(tile, r, a, lda, p * W, cols);
                if (rawAcc != null)
                {
                    for (int i = 0; i < r; i++)
                        new ReadOnlySpan<int>(tile + (i * W), cols).CopyTo(new Span<int>(rawAcc + ((long)(row + i) * n) + (p * W), cols));
                }
                else
                {
                    Requantize(tile, r, code, y + ((long)row * n) + (p * W), n, p * W, cols);
                }

                row += r;
            }
        }
    }

    /// <summary>The sparse part, exact in int32: outliers are few, so a scalar loop over them is cheap.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void AddOutliers(int* tile, int rows, byte* a, int lda, int col0, int cols)
    {
        int[] start = _weights.OutlierStart, ks = _weights.OutlierK, vs = _weights.OutlierValue;
        for (int j = 0; j < cols; j++)
        {
            for (int e = start[col0 + j]; e < start[col0 + j + 1]; e++)
            {
                int k = ks[e], v = vs[e];
                for (int i = 0; i < rows; i++) tile[(i * W) + j] += a[((long)i * lda) + k] * v;
            }
        }
    }

    /// <summary>y = act(float(acc - zp · rowsum) · (sa · sw) + b), fused per tile while the sums are in L1.</summary>
    private void Requantize(int* tile, int rows, ActivationCode code, float* y, int ldy, int col0, int cols)
    {
        float sa = code.Scale;
        int zp = code.ZeroPoint;
        bool relu = Activation == Activation.Relu;
        for (int i = 0; i < rows; i++)
        {
            int* acc = tile + (i * W);
            float* yi = y + ((long)i * ldy);
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                Vector512<float> vsa = Vector512.Create(sa);
                Vector512<int> vzp = Vector512.Create(zp);
                for (; j + 16 <= cols; j += 16)
                {
                    Vector512<int> centered = Vector512.Load(acc + j) - (vzp * Vector512.Load(_rowSum + col0 + j));
                    Vector512<float> v = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(centered), vsa * Vector512.Load(_scale + col0 + j), Vector512.Load(_bias + col0 + j));
                    if (relu) v = Vector512.Max(v, Vector512<float>.Zero);
                    v.Store(yi + j);
                }
            }

            for (; j < cols; j++)
            {
                float v = MathF.FusedMultiplyAdd(acc[j] - (zp * _rowSum[col0 + j]), sa * _scale[col0 + j], _bias[col0 + j]);
                yi[j] = relu ? MathF.Max(v, 0f) : v;
            }

            if (Activation == Activation.Sigmoid)
            {
                var span = new Span<float>(yi, cols);
                TensorPrimitives.Sigmoid(span, span);
            }
        }
    }

    private static byte* Codes(long bytes)
    {
        byte[]? buffer = s_codes;
        if (buffer is null || buffer.Length < bytes + 64)
        {
            buffer = GC.AllocateUninitializedArray<byte>((int)Math.Min(Array.MaxLength, Math.Max(bytes + 64, 4096)), pinned: true);
            s_codes = buffer;
        }

        return (byte*)Aligned(Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)));
    }

    private static void* Aligned(void* p) => (void*)(((nuint)p + 63) & ~(nuint)63);
}
