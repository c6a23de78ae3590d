using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.DenseCompute.Quantized;

/// <summary>
/// fp16 -> fp32 for packed weights, which are finite by construction (the packer rejects anything that
/// would round to Inf or NaN), so the special-exponent fix-up of <see cref="HalfBits"/> is not needed.
/// </summary>
/// <remarks>
/// Layout: a packed row of 32 columns keeps column j (j &lt; 16) in half slot 2j and column j + 16 in slot
/// 2j + 1, so each 32-bit lane holds (column j, column j + 16). Then a Vector512&lt;int&gt; load of a row
/// widens without any cross-lane shuffle: for the high halves an arithmetic shift right by 3 lines the
/// half's exponent and mantissa up with fp32's (the low half's bits fall below the mask); the low halves
/// are first shifted up by 16. The mask keeps the sign and the 15 value bits (dropping the three sign
/// copies), and a multiply by 2^112 moves the exponent bias from 15 to 127, exact for normals and
/// subnormals alike. Three or two integer ops and a multiply per 16 values.
/// </remarks>
internal static unsafe class HalfWidening
{
    public const int RowWidth = 32;

    /// <summary>Sign and the 15 value bits of a half once shifted into fp32 position.</summary>
    public const int FieldMask = unchecked((int)0x8FFF_E000);

    /// <summary>2^112: fp32's exponent bias (127) less fp16's (15), in the exponent.</summary>
    public const float Rebias = 5.192296858534828e33f;

    /// <summary>Largest |x| whose product with <see cref="Rebias"/> is finite is just below 2^16.</summary>
    public const float PrescaleLimit = 65536f;

    /// <summary>The half slot of column <paramref name="column"/> (0..31) within a packed row.</summary>
    public static int Slot(int column) => column < 16 ? 2 * column : (2 * (column - 16)) + 1;

    /// <summary>Widens <paramref name="rows"/> packed rows of 32 halves into rows of 32 floats in column order.</summary>
    public static void Widen(ushort* src, float* dst, long rows)
    {
        long r = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<int> mask = Vector512.Create(FieldMask);
            Vector512<float> rebias = Vector512.Create(Rebias);
            for (; r < rows; r++)
            {
                Vector512<int> lanes = Vector512.Load((int*)(src + (r * RowWidth)));
                Vector512.Store((Vector512.ShiftRightArithmetic(lanes << 16, 3) & mask).AsSingle() * rebias, dst + (r * RowWidth));
                Vector512.Store((Vector512.ShiftRightArithmetic(lanes, 3) & mask).AsSingle() * rebias, dst + (r * RowWidth) + 16);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<int> mask = Vector256.Create(FieldMask);
            Vector256<float> rebias = Vector256.Create(Rebias);
            for (; r < rows; r++)
            {
                // Two 8-lane halves of the row: lanes 0..7 hold columns (0..7, 16..23), lanes 8..15 (8..15, 24..31).
                for (int h = 0; h < 2; h++)
                {
                    Vector256<int> lanes = Vector256.Load((int*)(src + (r * RowWidth)) + (8 * h));
                    Vector256.Store((Vector256.ShiftRightArithmetic(lanes << 16, 3) & mask).AsSingle() * rebias, dst + (r * RowWidth) + (8 * h));
                    Vector256.Store((Vector256.ShiftRightArithmetic(lanes, 3) & mask).AsSingle() * rebias, dst + (r * RowWidth) + 16 + (8 * h));
                }
            }
        }

        for (; r < rows; r++)
        {
            for (int j = 0; j < RowWidth; j++) dst[(r * RowWidth) + j] = ToSingle(src[(r * RowWidth) + Slot(j)]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort half) =>
        BitConverter.Int32BitsToSingle(((short)half << 13) & FieldMask) * Rebias;

    /// <summary>
    /// dst = x · 2^112, for tiles that leave the weights at their widened scale of 2^-112
    /// (<see cref="PrescaledInput"/>). The multiply is exact (a power of two; subnormal x become normal), so
    /// the tile's products equal x·w exactly. Returns false, with dst incomplete, if some finite |x| is
    /// 2^16 or more: its scaled value would overflow to infinity, so the caller must use the rebiased weights.
    /// NaN scales to NaN and infinity to infinity, which the fp32 path gives too, but infinity is refused with
    /// the large values (the caller's fallback handles it the same way).
    /// </summary>
    public static bool ScaleInput(float* x, long count, float* dst)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> scale = Vector512.Create(Rebias), limit = Vector512.Create(PrescaleLimit);
            Vector512<float> tooLarge = Vector512<float>.Zero;
            for (; i + 16 <= count; i += 16)
            {
                Vector512<float> v = Vector512.Load(x + i);
                tooLarge |= Vector512.GreaterThanOrEqual(Vector512.Abs(v), limit);
                Vector512.Store(v * scale, dst + i);
            }

            if (tooLarge != Vector512<float>.Zero) return false;
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> scale = Vector256.Create(Rebias), limit = Vector256.Create(PrescaleLimit);
            Vector256<float> tooLarge = Vector256<float>.Zero;
            for (; i + 8 <= count; i += 8)
            {
                Vector256<float> v = Vector256.Load(x + i);
                tooLarge |= Vector256.GreaterThanOrEqual(Vector256.Abs(v), limit);
                Vector256.Store(v * scale, dst + i);
            }

            if (tooLarge != Vector256<float>.Zero) return false;
        }

        for (; i < count; i++)
        {
            if (MathF.Abs(x[i]) >= PrescaleLimit) return false;
            dst[i] = x[i] * Rebias;
        }

        return true;
    }
}
