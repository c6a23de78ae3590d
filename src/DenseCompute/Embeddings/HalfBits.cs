using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// fp16 -> fp32 widening by integer SIMD: .NET 10 exposes no F16C / vcvtph2ps intrinsic.
/// Shifting the 15 magnitude bits into fp32 position and multiplying by 2^112 rebiases the exponent
/// exactly for normals and subnormals alike; Inf and NaN need their exponent forced to all ones, and
/// NaNs come out quiet, as vcvtph2ps and (float)Half make them.
/// </summary>
internal static class HalfBits
{
    private const uint MagnitudeMask = 0x7FFF;
    private const uint SignMask = 0x8000;
    private const uint HalfInfinity = 0x7C00;
    private const uint SingleExponent = 0x7F80_0000;
    private const uint QuietBit = 0x0040_0000;
    private const float Rebias = 5.192296858534828e33f; // 2^112, exactly representable

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToSingle(Vector512<uint> half)
    {
        Vector512<uint> magnitude = half & Vector512.Create(MagnitudeMask);
        Vector512<uint> sign = (half & Vector512.Create(SignMask)) << 16;
        Vector512<float> value = (magnitude << 13).AsSingle() * Vector512.Create(Rebias);
        Vector512<uint> special = (Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(HalfInfinity)) & Vector512.Create(SingleExponent))
            | (Vector512.GreaterThan(magnitude, Vector512.Create(HalfInfinity)) & Vector512.Create(QuietBit));
        return (value.AsUInt32() | special | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<uint> half)
    {
        Vector256<uint> magnitude = half & Vector256.Create(MagnitudeMask);
        Vector256<uint> sign = (half & Vector256.Create(SignMask)) << 16;
        Vector256<float> value = (magnitude << 13).AsSingle() * Vector256.Create(Rebias);
        Vector256<uint> special = (Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(HalfInfinity)) & Vector256.Create(SingleExponent))
            | (Vector256.GreaterThan(magnitude, Vector256.Create(HalfInfinity)) & Vector256.Create(QuietBit));
        return (value.AsUInt32() | special | sign).AsSingle();
    }
}
