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

    private const int FieldMask = unchecked((int)0x8FFF_E000);
    private const float Rebias = 5.192296858534828e33f; // 2^112

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
}
