using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// How the bag kernel reads one row format. Implemented by structs so that the generic kernel is
/// specialized per format by the JIT: no switch per row and no interface dispatch per element.
/// Every stored value is value = code * Multiplier + Offset, with Multiplier and Offset per row
/// (1 and 0 for float rows), so weight and dequantization fold into one scalar per row.
/// The 512-bit loads are only called when Avx512F is supported, the 256-bit ones when Avx2 is.
/// </summary>
internal unsafe interface IRowReader
{
    /// <summary>False when Offset is always 0, so the kernel drops the per-row bias sum.</summary>
    static abstract bool HasOffset { get; }

    static abstract void RowScale(byte* row, int dim, out float multiplier, out float offset);

    /// <summary>16 codes from column <paramref name="col"/> (even) as fp32.</summary>
    static abstract Vector512<float> Load512(byte* row, nint col);

    /// <summary>8 codes from column <paramref name="col"/> (even) as fp32.</summary>
    static abstract Vector256<float> Load256(byte* row, nint col);

    static abstract float LoadScalar(byte* row, nint col);
}

internal unsafe struct Fp32Rows : IRowReader
{
    public static bool HasOffset => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RowScale(byte* row, int dim, out float multiplier, out float offset)
    {
        multiplier = 1f;
        offset = 0f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, nint col) => Vector512.Load((float*)row + col);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, nint col) => Vector256.Load((float*)row + col);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* row, nint col) => ((float*)row)[col];
}

internal unsafe struct Fp16Rows : IRowReader
{
    public static bool HasOffset => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RowScale(byte* row, int dim, out float multiplier, out float offset)
    {
        multiplier = 1f;
        offset = 0f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, nint col) =>
        HalfBits.ToSingle(Avx512F.ConvertToVector512UInt32(Avx.LoadVector256((ushort*)row + col)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, nint col) =>
        HalfBits.ToSingle(Avx2.ConvertToVector256Int32((ushort*)row + col).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* row, nint col) => HalfBits.ToSingle(Unsafe.ReadUnaligned<ushort>(row + 2 * col));
}

/// <summary>FBGEMM fused 8-bit rowwise: D codes, fp32 scale, fp32 bias.</summary>
internal unsafe struct Int8Rows : IRowReader
{
    public static bool HasOffset => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RowScale(byte* row, int dim, out float multiplier, out float offset)
    {
        multiplier = Unsafe.ReadUnaligned<float>(row + dim);
        offset = Unsafe.ReadUnaligned<float>(row + dim + 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, nint col) =>
        Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(row + col)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, nint col) =>
        Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(row + col));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* row, nint col) => row[col];
}

/// <summary>FBGEMM fused 4-bit rowwise: ceil(D/2) bytes, low nibble first, fp16 scale, fp16 bias.</summary>
internal unsafe struct Int4Rows : IRowReader
{
    public static bool HasOffset => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RowScale(byte* row, int dim, out float multiplier, out float offset)
    {
        byte* header = row + ((dim + 1) >> 1);
        multiplier = HalfBits.ToSingle(Unsafe.ReadUnaligned<ushort>(header));
        offset = HalfBits.ToSingle(Unsafe.ReadUnaligned<ushort>(header + 2));
    }

    // Interleaving the low and high nibbles byte-wise puts code 2k at byte 2k and code 2k+1 at byte
    // 2k+1, after which a plain zero-extension gives the codes in column order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Nibbles(Vector128<byte> packed)
    {
        Vector128<byte> mask = Vector128.Create((byte)0x0F);
        Vector128<byte> low = packed & mask;
        Vector128<byte> high = Vector128.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & mask;
        return Sse2.UnpackLow(low, high);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, nint col) =>
        Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(
            Nibbles(Vector128.CreateScalar(Unsafe.ReadUnaligned<ulong>(row + (col >> 1))).AsByte())));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, nint col) =>
        Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(
            Nibbles(Vector128.CreateScalar(Unsafe.ReadUnaligned<uint>(row + (col >> 1))).AsByte())));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* row, nint col)
    {
        int b = row[col >> 1];
        return (col & 1) == 0 ? b & 0xF : b >> 4;
    }
}
