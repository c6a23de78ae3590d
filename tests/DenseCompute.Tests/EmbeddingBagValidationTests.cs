using Recsys.DenseCompute.Embeddings;

namespace Recsys.DenseCompute.Tests;

/// <summary>Bad requests fail before any row is read, with a message that names the problem.</summary>
public class EmbeddingBagValidationTests
{
    private static readonly float[] Values = Enumerable.Range(0, 40).Select(i => (float)i).ToArray();

    private static void Pool(long[] indices, int[] offsets, float[]? weights = null, int outputLength = -1)
    {
        using var table = EmbeddingTable.FromFloats(Values, 10, 4, RowFormat.Fp32);
        float[] output = new float[outputLength >= 0 ? outputLength : Math.Max(0, offsets.Length - 1) * 4];
        EmbeddingBag.Pool(table, indices, offsets, weights, Pooling.Sum, output);
    }

    [Theory]
    [InlineData(10L)]
    [InlineData(-1L)]
    [InlineData(long.MaxValue)]
    public void Index_out_of_range_names_position_bag_and_value(long bad)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Pool(new long[] { 0, 1, 2, bad, 3 }, new[] { 0, 2, 2, 5 }));
        Assert.Equal("indices", ex.ParamName);
        Assert.Contains($"index {bad} at position 3 (bag 2)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[0, 10)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Offsets_not_monotonic_names_the_bag()
    {
        var ex = Assert.Throws<ArgumentException>(() => Pool(new long[] { 0, 1, 2 }, new[] { 0, 2, 1, 3 }));
        Assert.Equal("offsets", ex.ParamName);
        Assert.Contains("not monotonic at bag 1: 2 > 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Last_offset_must_equal_index_count()
    {
        var ex = Assert.Throws<ArgumentException>(() => Pool(new long[] { 0, 1, 2 }, new[] { 0, 1, 2 }));
        Assert.Contains("offsets[2] is 2, must equal the 3 indices", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void First_offset_must_be_zero()
    {
        var ex = Assert.Throws<ArgumentException>(() => Pool(new long[] { 0, 1 }, new[] { 1, 2 }));
        Assert.Contains("offsets[0] is 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_offsets_are_rejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => Pool(Array.Empty<long>(), Array.Empty<int>()));
        Assert.Contains("B + 1 entries", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Weights_length_must_match_indices()
    {
        var ex = Assert.Throws<ArgumentException>(() => Pool(new long[] { 0, 1, 2 }, new[] { 0, 3 }, new float[] { 1, 2 }));
        Assert.Equal("weights", ex.ParamName);
        Assert.Contains("2 weights for 3 indices", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Output_too_small_is_rejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => Pool(new long[] { 0, 1 }, new[] { 0, 1, 2 }, outputLength: 7));
        Assert.Equal("output", ex.ParamName);
        Assert.Contains("needs 2 x 4", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_bags_pool_to_zero_for_both_modes()
    {
        using var table = EmbeddingTable.FromFloats(Values, 10, 4, RowFormat.Int4);
        foreach (Pooling pooling in Enum.GetValues<Pooling>())
        {
            float[] output = Enumerable.Repeat(float.NaN, 12).ToArray();
            EmbeddingBag.Pool(table, new long[] { 9 }, new[] { 0, 0, 1, 1 }, default, pooling, output);
            Assert.All(output.AsSpan(0, 4).ToArray(), v => Assert.Equal(0f, v));
            Assert.All(output.AsSpan(8, 4).ToArray(), v => Assert.Equal(0f, v));
            float[] row9 = new float[4];
            RowCodec.Decode(table.Row(9), RowFormat.Int4, row9);
            Assert.Equal(row9, output.AsSpan(4, 4).ToArray());
        }
    }
}
