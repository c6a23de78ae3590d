namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// PyTorch EmbeddingBag over encoded rows: bag b pools rows indices[offsets[b] .. offsets[b+1]).
/// offsets has B + 1 entries (CSR form); weights is empty or one weight per index.
/// </summary>
public static unsafe class EmbeddingBag
{
    public static void Pool(EmbeddingTable table, ReadOnlySpan<long> indices, ReadOnlySpan<int> offsets,
        ReadOnlySpan<float> weights, Pooling pooling, Span<float> output) =>
        Pool(table.Base, table.Rows, table.Dim, table.Format, indices, offsets, weights, pooling, output);

    public static void Pool(byte* table, long rows, int dim, RowFormat format, ReadOnlySpan<long> indices,
        ReadOnlySpan<int> offsets, ReadOnlySpan<float> weights, Pooling pooling, Span<float> output)
    {
        int bags = offsets.Length - 1;
        Validate(rows, dim, indices, offsets, weights, output, bags);
        int rowBytes = RowLayout.RowBytes(format, dim);
        for (int b = 0; b < bags; b++)
        {
            Span<float> acc = output.Slice(b * dim, dim);
            acc.Clear();
            int start = offsets[b], end = offsets[b + 1];
            for (int j = start; j < end; j++)
            {
                float w = weights.IsEmpty ? 1f : weights[j];
                RowCodec.Accumulate(new ReadOnlySpan<byte>(table + indices[j] * rowBytes, rowBytes), format, dim, w, acc);
            }
            if (pooling == Pooling.Mean && end > start)
            {
                float inv = 1f / (end - start);
                for (int i = 0; i < dim; i++) acc[i] *= inv;
            }
        }
    }

    /// <summary>Checks a bag request against a table; the message names what is wrong.</summary>
    public static void Validate(long rows, int dim, ReadOnlySpan<long> indices, ReadOnlySpan<int> offsets,
        ReadOnlySpan<float> weights, Span<float> output, int bags)
    {
        if (offsets.Length < 1) throw new ArgumentException("offsets needs B + 1 entries (at least one)", nameof(offsets));
        if (offsets[0] != 0) throw new ArgumentException($"offsets[0] is {offsets[0]}, must be 0", nameof(offsets));
        if (offsets[^1] != indices.Length) throw new ArgumentException($"offsets[{bags}] is {offsets[^1]}, must equal the {indices.Length} indices", nameof(offsets));
        for (int b = 0; b < bags; b++)
        {
            if (offsets[b + 1] < offsets[b]) throw new ArgumentException($"offsets are not monotonic at bag {b}: {offsets[b]} > {offsets[b + 1]}", nameof(offsets));
        }
        if (!weights.IsEmpty && weights.Length != indices.Length) throw new ArgumentException($"{weights.Length} weights for {indices.Length} indices", nameof(weights));
        if (output.Length < bags * dim) throw new ArgumentException($"output holds {output.Length} floats, needs {bags} x {dim}", nameof(output));
        for (int j = 0; j < indices.Length; j++)
        {
            if ((ulong)indices[j] >= (ulong)rows) throw new ArgumentOutOfRangeException(nameof(indices), $"index {indices[j]} at position {j} is outside [0, {rows})");
        }
    }
}
