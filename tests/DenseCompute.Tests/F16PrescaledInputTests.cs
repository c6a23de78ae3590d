using System.Runtime.Intrinsics;
using Recsys.DenseCompute.Gemm;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Tests;

/// <summary>
/// The short-batch fp16 tiles leave the widened weights at 2^-112 of their value and multiply the input by 2^112
/// instead. These tests check that this changes no bit: the widening itself on every half, the input scaling,
/// and whole layers over activation ranges from subnormal to the 2^16 limit (and past it, the fallback).
/// </summary>
public class F16PrescaledInputTests
{
    private const double TwoTo112 = 5.192296858534828e33;

    [Fact]
    public void Every_half_widens_to_its_value_times_2_to_the_minus_112_and_specials_to_finite_values()
    {
        var lanes = new int[16];
        var mask = Vector512.Create(HalfWidening.FieldMask);
        var rebias = Vector512.Create(HalfWidening.Rebias);
        for (int start = 0; start <= ushort.MaxValue; start += 32)
        {
            // Lane j holds column j in its low half and column j + 16 in its high half (HalfWidening's layout).
            for (int j = 0; j < 16; j++) lanes[j] = (start + j) | ((start + j + 16) << 16);
            var v = Vector512.Create(lanes);
            Vector512<float> low = PrescaledInput.Low(v, mask, rebias), high = PrescaledInput.High(v, mask, rebias);
            Vector512<float> lowTrue = RebiasedWeights.Low(v, mask, rebias), highTrue = RebiasedWeights.High(v, mask, rebias);
            for (int j = 0; j < 16; j++)
            {
                Check(start + j, low[j], lowTrue[j]);
                Check(start + j + 16, high[j], highTrue[j]);
            }
        }
    }

    [Fact]
    public unsafe void Input_scaling_is_exact_below_2_to_the_16_and_refuses_larger_values()
    {
        // 37 values: two full vectors and a scalar tail, from subnormal to just below the limit, both signs.
        float[] x = [.. Enumerable.Range(0, 37).Select(i => (i % 2 == 0 ? 1 : -1) * MathF.Pow(2, -148 + (i * 4.4f)))];
        x[36] = -65535.99f;
        x[5] = 0f;
        var dst = new float[x.Length];
        fixed (float* px = x)
        fixed (float* pd = dst)
        {
            Assert.True(HalfWidening.ScaleInput(px, x.Length, pd));
            for (int i = 0; i < x.Length; i++) Assert.Equal(x[i] * TwoTo112, (double)dst[i]);

            foreach (int at in new[] { 3, 20, 36 })
            {
                float[] big = [.. x];
                big[at] = at == 20 ? float.NegativeInfinity : 65536f;
                fixed (float* pb = big) Assert.False(HalfWidening.ScaleInput(pb, big.Length, pd), $"value {big[at]} at {at} was scaled");
            }
        }
    }

    public static TheoryData<string> InputRanges() => ["typical", "tiny", "subnormal", "large", "mixed", "beyond-limit"];

    [Theory]
    [MemberData(nameof(InputRanges))]
    public void Short_batches_equal_the_fp32_gemm_of_rounded_weights_bit_for_bit(string range)
    {
        foreach (int m in new[] { 1, 2, 3, 4, 5, 8, 11, 16 })
        {
            foreach ((int k, int n) in new[] { (64, 64), (129, 96), (300, 33) })
            {
                foreach (Activation act in Enum.GetValues<Activation>())
                {
                    int seed = (m * 131) + k + n + (int)act;
                    float[] x = Input(range, m * k, seed);
                    float[] w = WeightsWithSubnormalHalves(n * k, seed + 1, 1f / MathF.Sqrt(k));
                    float[] b = GemmReference.Random(n, seed + 2, 0.1f);
                    float[] rounded = [.. w.Select(PackedLinearF16.RoundToHalf)];
                    var expected = new float[m * n];
                    var actual = new float[m * n];
                    PackedLinear.Pack(rounded, b, n, k, act).Forward(x, m, expected);
                    PackedLinearF16.Pack(w, b, n, k, act).Forward(x, m, actual);
                    for (int i = 0; i < expected.Length; i++)
                    {
                        Assert.True(
                            BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                            $"{range} M={m} K={k} N={n} {act}: output [{i / n}, {i % n}] is {actual[i]:R}, fp32 on rounded weights gives {expected[i]:R}");
                    }
                }
            }
        }
    }

    [Fact]
    public void A_NaN_input_row_gives_NaN_in_that_row_only()
    {
        const int m = 3, k = 40, n = 64;
        float[] x = GemmReference.Random(m * k, 7);
        x[k + 5] = float.NaN;
        var y = new float[m * n];
        PackedLinearF16.Pack(GemmReference.Random(n * k, 8, 0.2f), new float[n], n, k, Activation.None).Forward(x, m, y);
        Assert.All(y.AsSpan(n, n).ToArray(), v => Assert.True(float.IsNaN(v)));
        Assert.All(y.AsSpan(0, n).ToArray(), v => Assert.True(float.IsFinite(v)));
        Assert.All(y.AsSpan(2 * n, n).ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    /// <summary>Prescaled weight (lane bits as fp32) times 2^112 against the runtime's conversion of the same half.</summary>
    private static void Check(int bits, float scaled, float rebiased)
    {
        Half h = BitConverter.UInt16BitsToHalf((ushort)bits);
        double actual = scaled * TwoTo112; // exact in double
        if (Half.IsFinite(h))
        {
            Assert.True((double)(float)h == actual && BitConverter.SingleToInt32Bits((float)h) == BitConverter.SingleToInt32Bits(rebiased), $"half 0x{bits:X4} ({(float)h:R}): prescaled widening gives {actual:R} after x 2^112, rebiased {rebiased:R}");
        }
        else
        {
            // Exponent 31 lands at fp32 exponent 31 - 15 + 127 = 143: infinity and NaNs widen to finite
            // ±2^16·(1 + mantissa/1024). The packer refuses weights that round to them, so no tile sees one.
            double expected = (bits & 0x8000) != 0 ? -1 : 1;
            expected *= 65536.0 * (1 + ((bits & 0x3FF) / 1024.0));
            Assert.True(expected == actual, $"half 0x{bits:X4} (non-finite): expected {expected:R}, got {actual:R}");
        }
    }

    private static float[] Input(string range, int count, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u = (rng.NextDouble() * 2) - 1;
            x[i] = range switch
            {
                "typical" => (float)(u * 4),
                "tiny" => (float)(u * 1e-30),
                "subnormal" => (float)(u * 1e-39),
                "large" => (float)(u * 65535),
                // Each value picks its own decade, as ReLU outputs of a deep net do: zeros, tiny and large values side by side.
                "mixed" => rng.Next(4) == 0 ? 0f : (float)(u * Math.Pow(10, rng.Next(-40, 5))),
                "beyond-limit" => i == count / 2 ? 70000f : (float)(u * 4),
                _ => throw new ArgumentOutOfRangeException(nameof(range), range, "unknown input range"),
            };
        }

        return x;
    }

    /// <summary>Uniform weights with every seventh one below 2^-14, where halves are subnormal.</summary>
    private static float[] WeightsWithSubnormalHalves(int count, int seed, float scale)
    {
        float[] w = GemmReference.Random(count, seed, scale);
        for (int i = 0; i < w.Length; i += 7) w[i] *= 1e-4f;
        return w;
    }
}
