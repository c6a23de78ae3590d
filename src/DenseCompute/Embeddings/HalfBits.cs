using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// fp16 -> fp32 widening by integer SIMD: .NET 10 exposes no F16C / vcvtph2ps intrinsic.
/// With the half in the top 16 bits of a dword, an arithmetic shift right by 3 lines its exponent and
/// mantissa up with fp32's (the sign stays in bit 31, its three copies are masked off). The result is the
/// right value scaled by 2^-112, so one multiply by 2^112 rebiases the exponent exactly, for normals and
/// subnormals alike. Inf and NaN (exponent 31) first get the fp32 exponent forced to all ones; the
/// multiply then keeps Inf and quiets NaN, as vcvtph2ps and (float)Half do.
/// </summary>
internal static class HalfBits
{
    private const uint FieldMask = 0x8FFF_E000;      // sign, 5 exponent and 10 mantissa bits after the shift
    private const uint HalfExponent = 0x7C00_0000;   // exponent 31, half in the top 16 bits
    private const uint SingleExponent = 0x7F80_0000;
    private const float Rebias = 5.192296858534828e33f; // 2^112, exactly representable

    /// <summary>
    /// The same conversion for one value: (float)Half is a call the JIT does not inline, and a call in a
    /// bag loop spills every vector accumulator.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort half)
    {
        uint top = (uint)half << 16;
        uint bits = (uint)((int)top >> 3) & FieldMask;
        if ((top & HalfExponent) == HalfExponent) bits |= SingleExponent;
        return BitConverter.UInt32BitsToSingle(bits) * Rebias;
    }

    /// <param name="half">Zero-extended fp16 bit patterns, one per lane.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToSingle(Vector512<uint> half)
    {
        Vector512<uint> top = half << 16;
        Vector512<uint> bits = Vector512.ShiftRightArithmetic(top.AsInt32(), 3).AsUInt32() & Vector512.Create(FieldMask);
        Vector512<uint> special = Vector512.Equals(top & Vector512.Create(HalfExponent), Vector512.Create(HalfExponent));
        bits |= special & Vector512.Create(SingleExponent);
        return bits.AsSingle() * Vector512.Create(Rebias);
    }

    /// <param name="half">Zero-extended fp16 bit patterns, one per lane.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<uint> half)
    {
        Vector256<uint> top = half << 16;
        Vector256<uint> bits = Vector256.ShiftRightArithmetic(top.AsInt32(), 3).AsUInt32() & Vector256.Create(FieldMask);
        Vector256<uint> special = Vector256.Equals(top & Vector256.Create(HalfExponent), Vector256.Create(HalfExponent));
        bits |= special & Vector256.Create(SingleExponent);
        return bits.AsSingle() * Vector256.Create(Rebias);
    }
}
