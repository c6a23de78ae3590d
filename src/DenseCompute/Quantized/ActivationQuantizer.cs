using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Recsys.DenseCompute.Quantized;

/// <summary>The affine u8 code of a batch: x ≈ Scale · (q - ZeroPoint).</summary>
internal readonly record struct ActivationCode(float Scale, int ZeroPoint)
{
    /// <summary>Scale and zero point for the range; the zero point makes 0 exact, so padding and ReLU zeros cost nothing.</summary>
    public static ActivationCode For(ClipRange range)
    {
        float width = range.Width;
        if (!(width > 0)) return new ActivationCode(float.IsNaN(width) || float.IsInfinity(width) ? float.NaN : 1f, 0);
        float scale = width / 255f;
        int zp = (int)Math.Clamp(MathF.Round(-range.Min / scale), 0, 255);
        return new ActivationCode(scale, zp);
    }
}

/// <summary>Per-batch dynamic quantization of activations to u8, in rows padded with zero codes.</summary>
internal static unsafe class ActivationQuantizer
{
    /// <summary>
    /// The batch range: net-aware [0, max] when the input comes out of a ReLU, else [min, max] (both
    /// widened to contain 0).
    /// </summary>
    public static ClipRange Range(ReadOnlySpan<float> x, bool nonNegative) => QuantizationRanges.MinMax(x, nonNegative);

    /// <summary>q = clamp(round(x / scale + zp), 0, 255) for m rows of k values, into rows of stride lda (zero-padded).</summary>
    public static void Quantize(float* x, int m, int k, ActivationCode code, byte* q, int lda)
    {
        float inv = 1f / code.Scale;
        float zp = code.ZeroPoint;
        for (int i = 0; i < m; i++)
        {
            float* src = x + ((long)i * k);
            byte* dst = q + ((long)i * lda);
            int j = 0;
            if (Avx512F.IsSupported)
            {
                Vector512<float> vinv = Vector512.Create(inv), vzp = Vector512.Create(zp);
                Vector512<int> lo = Vector512<int>.Zero, hi = Vector512.Create(255);
                for (; j + 16 <= k; j += 16)
                {
                    // vcvtps2dq rounds to nearest even, as MathF.Round does in the tail.
                    Vector512<int> v = Avx512F.ConvertToVector512Int32(Vector512.FusedMultiplyAdd(Vector512.Load(src + j), vinv, vzp));
                    v = Vector512.Min(Vector512.Max(v, lo), hi);
                    Avx512F.ConvertToVector128Byte(v).Store(dst + j);
                }
            }

            for (; j < k; j++) dst[j] = QuantizeOne(src[j], inv, zp);
            for (; j < lda; j++) dst[j] = 0;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte QuantizeOne(float x, float inv, float zp)
    {
        float v = MathF.Round(MathF.FusedMultiplyAdd(x, inv, zp));
        return v >= 255f ? (byte)255 : v > 0f ? (byte)v : (byte)0;
    }
}
