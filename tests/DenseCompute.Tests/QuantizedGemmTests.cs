using Recsys.DenseCompute.Gemm;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Tests;

public class QuantizedGemmTests
{
    private static readonly int[] OddM = [1, 2, 3, 5, 7, 9, 14, 17, 33];
    private static readonly int[] OddK = [1, 3, 4, 5, 8, 13, 37, 64, 129];
    private static readonly int[] OddN = [1, 17, 31, 32, 33, 65];

    /// <summary>Packings x the paths that can run them; the scalar path runs every packing.</summary>
    public static TheoryData<string, int> PackingsAndPaths()
    {
        var data = new TheoryData<string, int>();
        foreach (string packing in new[] { "vnni", "madd16-chunk1", "madd16-chunk2", "madd16-outliers" })
        {
            Int8Path fast = packing == "vnni" ? Int8Path.Vnni : Int8Path.Madd16;
            if (PackedLinearInt8.IsSupported(fast)) data.Add(packing, (int)fast);
            data.Add(packing, (int)Int8Path.Scalar);
        }

        return data;
    }

    internal static Int8Options Options(string packing) => packing switch
    {
        "vnni" => new Int8Options { Kernel = Int8Kernel.Vnni },
        "madd16-chunk1" => new Int8Options { Kernel = Int8Kernel.Madd16, Madd16Chunk = 1 },
        "madd16-chunk2" => new Int8Options { Kernel = Int8Kernel.Madd16, Madd16Chunk = 2 },
        "madd16-outliers" => new Int8Options { Kernel = Int8Kernel.Madd16, OutlierDensity = 0.05 },
        _ => throw new ArgumentException(packing),
    };

    [Fact]
    public void This_machine_runs_both_int8_kernels()
    {
        // The benchmarks compare the two kernels; that means little if either silently fell back to scalar.
        if (System.Runtime.Intrinsics.X86.Avx512BW.IsSupported) Assert.Equal(Int8Path.Madd16, PackedLinearInt8.BestPath(Int8Kernel.Madd16));
        if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported) Assert.Equal(Int8Path.Vnni, PackedLinearInt8.BestPath(Int8Kernel.Vnni));
    }

    [Theory]
    [MemberData(nameof(PackingsAndPaths))]
    public void Int32_sums_equal_the_exact_integer_reference_bit_for_bit(string packing, int pathId)
    {
        var path = (Int8Path)pathId;
        foreach (int m in OddM)
        {
            foreach (int k in OddK)
            {
                foreach (int n in OddN)
                {
                    int seed = (m * 10007) + (k * 101) + n;
                    // Heavy-tailed weights, so the outlier packing really has outliers.
                    float[] w = HeavyTailed(n * k, seed);
                    var layer = PackedLinearInt8.Pack(w, new float[n], n, k, Activation.None, Options(packing));
                    byte[] codes = Codes(m * k, seed + 1);
                    CheckAccumulators(layer, w, codes, m, k, n, path, packing);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(PackingsAndPaths))]
    public void Saturating_inputs_still_give_exact_sums(string packing, int pathId)
    {
        // All codes 255 and weights at the ends of the range: the worst case for 16-bit pair sums.
        const int m = 5, k = 200, n = 40;
        var w = new float[n * k];
        var rng = new Random(7);
        for (int i = 0; i < w.Length; i++) w[i] = (i / k) % 3 == 0 ? 1f : (i / k) % 3 == 1 ? -1f : rng.Next(2) == 0 ? 1f : -1f;
        var layer = PackedLinearInt8.Pack(w, new float[n], n, k, Activation.None, Options(packing));
        byte[] codes = new byte[m * k];
        Array.Fill(codes, (byte)255);
        CheckAccumulators(layer, w, codes, m, k, n, (Int8Path)pathId, packing);
        if (packing == "madd16-chunk2") Assert.True(layer.OutlierCount > 0, "the two-group chunk must move weights out of lane sets that could saturate");
    }

    [Fact]
    public void Outlier_packing_keeps_the_tail_exact_and_sparse()
    {
        const int n = 64, k = 300;
        float[] w = HeavyTailed(n * k, 3);
        var layer = PackedLinearInt8.Pack(w, new float[n], n, k, Activation.None, new Int8Options { Kernel = Int8Kernel.Madd16, OutlierDensity = 0.01, Madd16Chunk = 1 });
        Assert.InRange(layer.OutlierDensity, 0.001, 0.02);
        for (int o = 0; o < n; o++)
        {
            for (int kk = 0; kk < k; kk++)
            {
                // Beyond the 7-bit main range the weight is kept at its full value, not clipped.
                double expected = Math.Round(w[(o * k) + kk] / (double)layer.WeightScales[o], MidpointRounding.ToEven);
                Assert.Equal((int)expected, layer.QuantizedWeight(o, kk));
            }
        }
    }

    public static TheoryData<string, int, int> PackingsPathsActivations()
    {
        var data = new TheoryData<string, int, int>();
        foreach (var row in PackingsAndPaths())
        {
            foreach (Activation act in Enum.GetValues<Activation>()) data.Add((string)row[0], (int)row[1], (int)act);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(PackingsPathsActivations))]
    public void Requantized_output_matches_the_product_of_the_dequantized_operands(string packing, int pathId, int actId)
    {
        var path = (Int8Path)pathId;
        var act = (Activation)actId;
        foreach ((int m, int k, int n, bool nonNegative) in new[] { (1, 37, 33, false), (7, 129, 65, true), (16, 479, 64, false), (33, 256, 31, true) })
        {
            int seed = m + k + n;
            float[] x = GemmReference.Random(m * k, seed);
            if (nonNegative) x = x.Select(v => MathF.Max(v, 0)).ToArray();
            float[] w = HeavyTailed(n * k, seed + 1);
            float[] b = GemmReference.Random(n, seed + 2);
            Int8Options options = Options(packing) with { InputNonNegative = nonNegative };
            var layer = PackedLinearInt8.Pack(w, b, n, k, act, options);
            var y = new float[m * n];
            layer.Forward(x, m, y, path);

            // The activation code the layer uses, recomputed from its definition.
            ClipRange range = QuantizationRanges.MinMax(x, nonNegative);
            double sa = range.Width / 255f;
            int zp = (int)Math.Clamp(Math.Round(-range.Min / sa), 0, 255);
            byte[] codes = new byte[m * k];
            for (int i = 0; i < codes.Length; i++) codes[i] = ActivationQuantizer.QuantizeOne(x[i], 1f / (float)sa, zp);
            Assert.Equal(nonNegative ? 0 : zp, zp);

            for (int i = 0; i < m; i++)
            {
                for (int o = 0; o < n; o++)
                {
                    float sw = layer.WeightScales[o];
                    double pre = 0, quantBound = 0;
                    for (int kk = 0; kk < k; kk++)
                    {
                        double xd = (float)sa * (codes[(i * k) + kk] - zp);
                        double wd = sw * (double)layer.QuantizedWeight(o, kk);
                        pre += xd * wd;
                        // |x̂ŵ - xw| <= |x̂||ŵ - w| + |w||x̂ - x|: the quantization error against the fp32 operands.
                        quantBound += (Math.Abs(xd) * Math.Abs(wd - w[(o * k) + kk])) + (Math.Abs(w[(o * k) + kk]) * Math.Abs(xd - x[(i * k) + kk]));
                    }

                    // fp32 epilogue: int -> float, sa * sw, one fma: three roundings of 2^-24 each, with slack.
                    double roundBound = (4e-7 * (Math.Abs(pre) + Math.Abs(b[o]))) + 1e-7;
                    double fp32 = b[o];
                    for (int kk = 0; kk < k; kk++) fp32 += (double)x[(i * k) + kk] * w[(o * k) + kk];
                    double got = y[(i * n) + o];
                    double expected = Activate(pre + b[o], act), exact = Activate(fp32, act);
                    double slope = act == Activation.Sigmoid ? 0.25 : 1;
                    double tol = (slope * roundBound) + (act == Activation.Sigmoid ? 1e-6 : 0);
                    Assert.True(Math.Abs(got - expected) <= tol, $"{packing} {path} {act} M={m} K={k} N={n}: y[{i},{o}] = {got}, dequantized-operand result {expected} ± {tol:E2}");
                    Assert.True(Math.Abs(got - exact) <= (slope * (quantBound + roundBound)) + 1e-6, $"{packing} {path} {act}: y[{i},{o}] = {got}, fp32 {exact}, beyond the quantization bound {quantBound:E2}");
                }
            }
        }
    }

    [Fact]
    public void Both_int8_packings_give_similar_outputs_and_the_vnni_one_is_identical_on_every_path()
    {
        const int m = 9, k = 130, n = 70;
        float[] x = GemmReference.Random(m * k, 1);
        float[] w = GemmReference.Random(n * k, 2, 0.1f);
        float[] b = GemmReference.Random(n, 3);
        var vnni = PackedLinearInt8.Pack(w, b, n, k, Activation.Relu, new Int8Options { Kernel = Int8Kernel.Vnni });
        var scalar = new float[m * n];
        vnni.Forward(x, m, scalar, Int8Path.Scalar);
        if (PackedLinearInt8.IsSupported(Int8Path.Vnni))
        {
            var fast = new float[m * n];
            vnni.Forward(x, m, fast, Int8Path.Vnni);
            Assert.Equal(scalar, fast);
        }
    }

    public static TheoryData<int> GemmPathsSupported() => GemmTests.SupportedPaths();

    [Theory]
    [MemberData(nameof(GemmPathsSupported))]
    public void Fp16_layer_equals_the_fp32_gemm_of_fp16_rounded_weights(int pathId)
    {
        var path = (GemmPath)pathId;
        foreach (int m in new[] { 1, 2, 3, 4, 5, 8, 9, 13, 16, 17, 64, 300 })
        {
            foreach ((int k, int n) in new[] { (1, 1), (37, 33), (300, 65), (64, 96), (129, 17), (513, 64) })
            {
                foreach (Activation act in Enum.GetValues<Activation>())
                {
                    int seed = (m * 31) + (k * 7) + n + (int)act;
                    float[] x = GemmReference.Random(m * k, seed);
                    float[] w = GemmReference.Random(n * k, seed + 1, 1f / MathF.Sqrt(k));
                    float[] b = GemmReference.Random(n, seed + 2);
                    float[] rounded = w.Select(PackedLinearF16.RoundToHalf).ToArray();
                    var expected = new float[m * n];
                    var actual = new float[m * n];
                    PackedLinear.Pack(rounded, b, n, k, act).Forward(x, m, expected, 1, path);
                    PackedLinearF16.Pack(w, b, n, k, act).Forward(x, m, actual, path);
                    // Same tiles, same k order: summation order is identical too, so the tolerance is zero.
                    Assert.True(expected.AsSpan().SequenceEqual(actual), $"{path} M={m} K={k} N={n} {act}: fp16 layer differs from fp32 on rounded weights");
                }
            }
        }
    }

    [Fact]
    public unsafe void Half_widening_matches_the_runtime_conversion_for_every_finite_half()
    {
        var halves = new List<ushort>();
        for (int h = 0; h <= ushort.MaxValue; h++)
        {
            if (Half.IsFinite(BitConverter.UInt16BitsToHalf((ushort)h))) halves.Add((ushort)h);
        }

        while (halves.Count % 32 != 0) halves.Add(0);
        // Packed row layout: column j in slot 2j, column j + 16 in slot 2j + 1.
        var src = new ushort[halves.Count];
        for (int i = 0; i < halves.Count; i++) src[((i / 32) * 32) + HalfWidening.Slot(i % 32)] = halves[i];
        var dst = new float[src.Length];
        fixed (ushort* s = src)
        fixed (float* d = dst)
        {
            HalfWidening.Widen(s, d, src.Length / 32);
        }

        for (int i = 0; i < halves.Count; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf(halves[i]);
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(dst[i]), $"half 0x{halves[i]:X4}: {dst[i]} vs {expected}");
            Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(HalfWidening.ToSingle(halves[i])));
        }
    }

    [Theory]
    [MemberData(nameof(PackingsPathsActivations))]
    public void A_NaN_or_infinite_input_gives_NaN_outputs_like_fp32(string packing, int pathId, int actId)
    {
        const int k = 20, n = 40;
        var layer = PackedLinearInt8.Pack(GemmReference.Random(n * k, 1), new float[n], n, k, (Activation)actId, Options(packing));
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity })
        {
            float[] x = GemmReference.Random(2 * k, 2);
            x[5] = bad;
            var y = new float[2 * n];
            layer.Forward(x, 2, y, (Int8Path)pathId);
            Assert.All(y, v => Assert.True(float.IsNaN(v), $"{packing} {(Int8Path)pathId} {(Activation)actId} input {bad}: got {v}"));
        }
    }

    [Fact]
    public void Fp16_pack_rejects_weights_beyond_the_half_range_with_the_index()
    {
        float[] w = [1f, 70000f];
        var e = Assert.Throws<ArgumentException>(() => PackedLinearF16.Pack(w, new float[1], 1, 2, Activation.None));
        Assert.Equal("weight", e.ParamName);
        Assert.Contains("weight[0, 1]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Int8_layers_keep_the_fp32_contract_on_bad_shapes_and_non_finite_weights()
    {
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => PackedLinearInt8.Pack(new float[6], new float[1], 2, 3, Activation.None)).ParamName);
        var nan = Assert.Throws<ArgumentException>(() => PackedLinearInt8.Pack([1f, float.NaN], new float[1], 1, 2, Activation.None));
        Assert.Contains("weight[0, 1]", nan.Message, StringComparison.Ordinal);
        var layer = PackedLinearInt8.Pack(new float[6], new float[2], 2, 3, Activation.None);
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => layer.Forward(new float[5], 2, new float[4])).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => layer.Forward(new float[6], 2, new float[3])).ParamName);
    }

    private static void CheckAccumulators(PackedLinearInt8 layer, float[] w, byte[] codes, int m, int k, int n, Int8Path path, string packing)
    {
        int limit = packing == "vnni" ? 127 : int.MaxValue;
        var q = new long[n * k];
        for (int o = 0; o < n; o++)
        {
            for (int kk = 0; kk < k; kk++)
            {
                // The quantized weight from its definition: round(w / scale), clipped only by the VNNI packing.
                double v = Math.Round(w[(o * k) + kk] / (double)layer.WeightScales[o], MidpointRounding.ToEven);
                q[(o * k) + kk] = (long)Math.Clamp(v, -limit, limit);
            }
        }

        var acc = new int[m * n];
        layer.Accumulate(codes, m, acc, path);
        for (int i = 0; i < m; i++)
        {
            for (int o = 0; o < n; o++)
            {
                long expected = 0;
                for (int kk = 0; kk < k; kk++) expected += codes[(i * k) + kk] * q[(o * k) + kk];
                if (acc[(i * n) + o] != expected) Assert.Fail($"{packing} {path} M={m} K={k} N={n}: acc[{i},{o}] = {acc[(i * n) + o]}, exact {expected}");
            }
        }
    }

    private static double Activate(double v, Activation act) => act switch
    {
        Activation.Relu => Math.Max(v, 0),
        Activation.Sigmoid => 1 / (1 + Math.Exp(-v)),
        _ => v,
    };

    /// <summary>Student-t-like weights: mostly small, a few large, as trained layers look.</summary>
    internal static float[] HeavyTailed(int count, int seed)
    {
        var rng = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            double normal = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            double chi = 0.5 + (rng.NextDouble() * rng.NextDouble() * 4);
            values[i] = (float)(normal / chi * 0.05);
        }

        return values;
    }

    private static byte[] Codes(int count, int seed)
    {
        var rng = new Random(seed);
        var codes = new byte[count];
        rng.NextBytes(codes);
        // Runs of the largest code exercise the saturation bound.
        for (int i = 0; i < count; i += 7) codes[i] = 255;
        return codes;
    }
}
