using System.Runtime.Intrinsics;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.DenseCompute.Tests;

public class EmbeddingTableTests
{
    [Fact]
    public unsafe void Large_table_is_2MiB_aligned_zeroed_and_advised_on_linux()
    {
        using var table = new EmbeddingTable(40_000, 64, RowFormat.Fp32); // ~10 MB
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(0UL, (ulong)table.Base % (2UL << 20));
            Assert.True(table.HugePagesAdvised);
        }
        Assert.True(table.Row(0).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(table.Row(39_999).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void Loader_fills_rows_one_by_one_and_reads_them_back()
    {
        using var table = new EmbeddingTable(5, 3, RowFormat.Int8);
        float[] row = { -1f, 0.5f, 2f };
        RowCodec.Encode(row, RowFormat.Int8, table.Row(4));
        float[] back = new float[3];
        RowCodec.Decode(table.Row(4), RowFormat.Int8, back);
        for (int i = 0; i < 3; i++) Assert.True(Math.Abs(back[i] - row[i]) <= 3f / 255 / 2 + 1e-6f, $"col {i}: {back[i]}");
        Assert.True(table.Row(3).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public unsafe void Disposed_table_refuses_access_and_bad_rows_are_named()
    {
        var table = new EmbeddingTable(3, 2, RowFormat.Fp16);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => table.Row(3));
        Assert.Equal("index", ex.ParamName);
        table.Dispose();
        Assert.Throws<ObjectDisposedException>(() => (nint)table.Base);
        table.Dispose(); // idempotent
    }
}

/// <summary>The integer-SIMD fp16 widening against (float)Half on all 65536 bit patterns.</summary>
public class EmbeddingHalfBitsTests
{
    [Fact]
    public void Every_half_widens_like_the_scalar_conversion()
    {
        for (int start = 0; start < 65536; start += 16)
        {
            var bits = new uint[16];
            for (int i = 0; i < 16; i++) bits[i] = (uint)(start + i);
            if (Vector512.IsHardwareAccelerated) Check(start, HalfBits.ToSingle(Vector512.Create(bits)), 16);
            if (Vector256.IsHardwareAccelerated) Check(start, HalfBits.ToSingle(Vector256.Create(bits.AsSpan(0, 8))), 8);
            for (int i = 0; i < 16; i++) CheckOne(start + i, HalfBits.ToSingle((ushort)(start + i)));
        }
    }

    private static void Check(int start, Vector512<float> v, int n)
    {
        for (int i = 0; i < n; i++) CheckOne(start + i, v[i]);
    }

    private static void Check(int start, Vector256<float> v, int n)
    {
        for (int i = 0; i < n; i++) CheckOne(start + i, v[i]);
    }

    private static void CheckOne(int h, float actual)
    {
        float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h);
        // NaNs compare by bits: the payload must survive widening too.
        Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual),
            $"half 0x{h:X4}: expected {expected} (0x{BitConverter.SingleToUInt32Bits(expected):X8}) got {actual} (0x{BitConverter.SingleToUInt32Bits(actual):X8})");
    }
}
