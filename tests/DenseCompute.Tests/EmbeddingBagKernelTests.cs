using System.Buffers.Binary;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.DenseCompute.Tests;

/// <summary>
/// The SIMD bag kernels against a naive scalar reference written here, for every D in 1..257, every
/// format, both poolings, with and without per-index weights; bags include empty ones and bags longer
/// than the prefetch distance.
/// </summary>
public class EmbeddingBagKernelTests
{
    public static TheoryData<int> AllDims
    {
        get
        {
            var data = new TheoryData<int>();
            for (int d = 1; d <= 257; d++) data.Add(d);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(AllDims))]
    public void Pool_matches_scalar_reference(int dim)
    {
        var rng = new Random(dim * 7919);
        const int rows = 61;
        float[] values = new float[rows * dim];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 4 - 1.5);
        int[] sizes = { 3, 0, 1, 40, 0, 7, 2 };
        int[] offsets = new int[sizes.Length + 1];
        for (int b = 0; b < sizes.Length; b++) offsets[b + 1] = offsets[b] + sizes[b];
        long[] indices = new long[offsets[^1]];
        for (int j = 0; j < indices.Length; j++) indices[j] = rng.Next(rows);
        indices[^1] = rows - 1; // the last row: a kernel that reads past a row end would fault or differ
        float[] weights = new float[indices.Length];
        for (int j = 0; j < weights.Length; j++) weights[j] = (float)(rng.NextDouble() * 3 - 1);

        foreach (RowFormat format in Enum.GetValues<RowFormat>())
        {
            using var table = EmbeddingTable.FromFloats(values, rows, dim, format);
            foreach (Pooling pooling in Enum.GetValues<Pooling>())
            {
                foreach (bool weighted in new[] { false, true })
                {
                    ReadOnlySpan<float> w = weighted ? weights : default;
                    float[] actual = new float[sizes.Length * dim];
                    actual.AsSpan().Fill(float.NaN); // every output, empty bags included, must be written
                    EmbeddingBag.Pool(table, indices, offsets, w, pooling, actual);
                    (double[] expected, double[] magnitude) = Reference(table, indices, offsets, w, pooling);
                    for (int i = 0; i < actual.Length; i++)
                    {
                        double tol = 1e-5 * magnitude[i] + 1e-6;
                        Assert.True(Math.Abs(actual[i] - expected[i]) <= tol,
                            $"{format} {pooling} weighted={weighted} D={dim} bag {i / dim} col {i % dim}: {actual[i]} vs {expected[i]}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(64)]
    public void Prefetch_distance_does_not_change_results(int distance)
    {
        int saved = EmbeddingBag.PrefetchDistance;
        try
        {
            const int rows = 100, dim = 33;
            float[] values = new float[rows * dim];
            var rng = new Random(5);
            for (int i = 0; i < values.Length; i++) values[i] = (float)rng.NextDouble();
            long[] indices = Enumerable.Range(0, 90).Select(i => (long)((i * 37) % rows)).ToArray();
            int[] offsets = { 0, 30, 30, 90 };
            using var table = EmbeddingTable.FromFloats(values, rows, dim, RowFormat.Int8);
            EmbeddingBag.PrefetchDistance = distance;
            float[] actual = new float[3 * dim];
            EmbeddingBag.Pool(table, indices, offsets, default, Pooling.Sum, actual);
            (double[] expected, double[] magnitude) = Reference(table, indices, offsets, default, Pooling.Sum);
            for (int i = 0; i < actual.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 * magnitude[i] + 1e-6);
        }
        finally
        {
            EmbeddingBag.PrefetchDistance = saved;
        }
    }

    // Rows that fit one register pass (D a multiple of 16 up to 128; of 32 for int4) run every bag of a call
    // in one loop: many short bags, runs of empty ones, prefetch reaching several bags ahead, and an
    // output that starts off a cache line and ends right before a guard value.
    [Theory]
    [InlineData(16, 0)]
    [InlineData(32, 3)]
    [InlineData(64, 7)]
    [InlineData(64, 0)]
    [InlineData(96, 32)]
    [InlineData(128, 5)]
    [InlineData(48, 9)]
    public void Many_short_bags_in_one_call_match_the_reference(int dim, int distance)
    {
        int saved = EmbeddingBag.PrefetchDistance;
        try
        {
            EmbeddingBag.PrefetchDistance = distance;
            var rng = new Random(dim * 31 + distance);
            const int rows = 97, bags = 300;
            float[] values = new float[rows * dim];
            for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 2 - 1);
            int[] offsets = new int[bags + 1];
            for (int b = 0; b < bags; b++) offsets[b + 1] = offsets[b] + (b % 50 < 5 ? 0 : rng.Next(0, 4)); // P = 0..3
            long[] indices = new long[offsets[^1]];
            for (int j = 0; j < indices.Length; j++) indices[j] = rng.Next(rows);
            float[] weights = new float[indices.Length];
            for (int j = 0; j < weights.Length; j++) weights[j] = (float)(rng.NextDouble() * 2 - 0.5);
            foreach (RowFormat format in Enum.GetValues<RowFormat>())
            {
                using var table = EmbeddingTable.FromFloats(values, rows, dim, format);
                foreach (Pooling pooling in Enum.GetValues<Pooling>())
                {
                    foreach (bool weighted in new[] { false, true })
                    {
                        ReadOnlySpan<float> w = weighted ? weights : default;
                        float[] buffer = new float[3 + (bags * dim) + 1];
                        buffer.AsSpan().Fill(float.NaN);
                        buffer[^1] = 777f;
                        Span<float> actual = buffer.AsSpan(3, bags * dim);
                        EmbeddingBag.Pool(table, indices, offsets, w, pooling, actual);
                        (double[] expected, double[] magnitude) = Reference(table, indices, offsets, w, pooling);
                        for (int i = 0; i < actual.Length; i++)
                        {
                            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 * magnitude[i] + 1e-6,
                                $"{format} {pooling} weighted={weighted} D={dim} pf={distance} bag {i / dim} col {i % dim}: {actual[i]} vs {expected[i]}");
                        }
                        Assert.Equal(777f, buffer[^1]);
                        Assert.True(float.IsNaN(buffer[2]), "the kernel wrote before the output");
                    }
                }
            }
        }
        finally
        {
            EmbeddingBag.PrefetchDistance = saved;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Non_temporal_prefetch_does_not_change_results(bool nonTemporal)
    {
        bool saved = EmbeddingBag.PrefetchNonTemporal;
        try
        {
            EmbeddingBag.PrefetchNonTemporal = nonTemporal;
            const int rows = 50, dim = 64;
            float[] values = new float[rows * dim];
            var rng = new Random(17);
            for (int i = 0; i < values.Length; i++) values[i] = (float)rng.NextDouble();
            long[] indices = Enumerable.Range(0, 120).Select(i => (long)((i * 13) % rows)).ToArray();
            int[] offsets = { 0, 1, 1, 41, 120 };
            foreach (RowFormat format in Enum.GetValues<RowFormat>())
            {
                using var table = EmbeddingTable.FromFloats(values, rows, dim, format);
                float[] actual = new float[4 * dim];
                EmbeddingBag.Pool(table, indices, offsets, default, Pooling.Sum, actual);
                (double[] expected, double[] magnitude) = Reference(table, indices, offsets, default, Pooling.Sum);
                for (int i = 0; i < actual.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 * magnitude[i] + 1e-6, $"{format} {i}");
            }
        }
        finally
        {
            EmbeddingBag.PrefetchNonTemporal = saved;
        }
    }

    [Fact]
    public void Zero_bags_write_nothing()
    {
        using var table = EmbeddingTable.FromFloats(new float[] { 1, 2 }, 1, 2, RowFormat.Fp32);
        float[] output = { 42f };
        EmbeddingBag.Pool(table, ReadOnlySpan<long>.Empty, new[] { 0 }, default, Pooling.Mean, output);
        Assert.Equal(42f, output[0]);
    }

    // Decodes bytes directly from the documented layouts, in double, one value at a time.
    private static (double[] Values, double[] Magnitude) Reference(EmbeddingTable table, long[] indices, int[] offsets,
        ReadOnlySpan<float> weights, Pooling pooling)
    {
        int dim = table.Dim, bags = offsets.Length - 1;
        double[] sum = new double[bags * dim], mag = new double[bags * dim];
        for (int b = 0; b < bags; b++)
        {
            int n = offsets[b + 1] - offsets[b];
            for (int j = offsets[b]; j < offsets[b + 1]; j++)
            {
                ReadOnlySpan<byte> row = table.Row(indices[j]);
                double w = weights.IsEmpty ? 1 : weights[j];
                for (int c = 0; c < dim; c++)
                {
                    sum[b * dim + c] += w * RowTerms.Value(row, table.Format, dim, c);
                    mag[b * dim + c] += Math.Abs(w) * RowTerms.Magnitude(row, table.Format, dim, c);
                }
            }
            if (pooling == Pooling.Mean && n > 0)
            {
                for (int c = 0; c < dim; c++)
                {
                    sum[b * dim + c] /= n;
                    mag[b * dim + c] /= n;
                }
            }
        }
        return (sum, mag);
    }
}

/// <summary>Scalar decoding straight from the documented byte layouts, independent of the library.</summary>
internal static class RowTerms
{
    public static double Value(ReadOnlySpan<byte> row, RowFormat format, int dim, int c)
    {
        switch (format)
        {
            case RowFormat.Fp32: return BinaryPrimitives.ReadSingleLittleEndian(row[(4 * c)..]);
            case RowFormat.Fp16: return (double)BinaryPrimitives.ReadHalfLittleEndian(row[(2 * c)..]);
            case RowFormat.Int8:
                return row[c] * (double)BinaryPrimitives.ReadSingleLittleEndian(row[dim..])
                    + BinaryPrimitives.ReadSingleLittleEndian(row[(dim + 4)..]);
            default:
                int packed = (dim + 1) / 2;
                int code = (c & 1) == 0 ? row[c / 2] & 0xF : row[c / 2] >> 4;
                return code * (double)BinaryPrimitives.ReadHalfLittleEndian(row[packed..])
                    + (double)BinaryPrimitives.ReadHalfLittleEndian(row[(packed + 2)..]);
        }
    }

    /// <summary>|scale q| + |bias| for quantized rows, |x| otherwise: the size of what a kernel sums.</summary>
    public static double Magnitude(ReadOnlySpan<byte> row, RowFormat format, int dim, int c)
    {
        switch (format)
        {
            case RowFormat.Int8:
                return Math.Abs(row[c] * (double)BinaryPrimitives.ReadSingleLittleEndian(row[dim..]))
                    + Math.Abs((double)BinaryPrimitives.ReadSingleLittleEndian(row[(dim + 4)..]));
            case RowFormat.Int4:
                int packed = (dim + 1) / 2;
                int code = (c & 1) == 0 ? row[c / 2] & 0xF : row[c / 2] >> 4;
                return Math.Abs(code * (double)BinaryPrimitives.ReadHalfLittleEndian(row[packed..]))
                    + Math.Abs((double)BinaryPrimitives.ReadHalfLittleEndian(row[(packed + 2)..]));
            default:
                return Math.Abs(Value(row, format, dim, c));
        }
    }
}
