using System.Diagnostics.CodeAnalysis;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// PyTorch EmbeddingBag over encoded rows: bag b pools rows indices[offsets[b] .. offsets[b+1]).
/// offsets has B + 1 entries (CSR form); weights is empty or one weight per index. Rows are stored in
/// any <see cref="RowFormat"/> and accumulated in fp32. An empty bag yields zeros. Mean with weights
/// divides the weighted sum by the bag size (PyTorch allows weights with sum only).
/// </summary>
public static unsafe class EmbeddingBag
{
    /// <summary>
    /// Indices ahead of the current one whose rows are prefetched; 0 turns prefetching off. 32 rows of
    /// 256 B keep ~128 line fills in flight, the best distance gather.c found here (BASELINES.md).
    /// </summary>
    internal static int PrefetchDistance { get; set; } = 32;

    /// <summary>prefetchnta (true) or prefetcht0 for the rows ahead.</summary>
    internal static bool PrefetchNonTemporal { get; set; }

    public static void Pool(EmbeddingTable table, ReadOnlySpan<long> indices, ReadOnlySpan<int> offsets,
        ReadOnlySpan<float> weights, Pooling pooling, Span<float> output) =>
        Pool(table.Base, table.Rows, table.Dim, table.Format, indices, offsets, weights, pooling, output);

    public static void Pool(byte* table, long rows, int dim, RowFormat format, ReadOnlySpan<long> indices,
        ReadOnlySpan<int> offsets, ReadOnlySpan<float> weights, Pooling pooling, Span<float> output)
    {
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "dim must be > 0");
        if (table == null && rows > 0) throw new ArgumentNullException(nameof(table));
        int bags = offsets.Length - 1;
        Validate(rows, dim, indices, offsets, weights, output, bags);
        if (bags == 0) return;
        int rowBytes = RowLayout.RowBytes(format, dim);
        bool mean = pooling switch
        {
            Pooling.Sum => false,
            Pooling.Mean => true,
            _ => throw new ArgumentOutOfRangeException(nameof(pooling), pooling, "unknown pooling"),
        };
        fixed (long* idx = indices)
        fixed (int* off = offsets)
        fixed (float* w = weights)
        fixed (float* o = output)
        {
            var job = new BagJob(table, rowBytes, dim, idx, indices.Length, weights.IsEmpty ? null : w,
                PrefetchDistance, PrefetchNonTemporal);
            switch (format)
            {
                case RowFormat.Fp32: BagKernel<Fp32Rows>.Run(job, off, bags, mean, o); break;
                case RowFormat.Fp16: BagKernel<Fp16Rows>.Run(job, off, bags, mean, o); break;
                case RowFormat.Int8: BagKernel<Int8Rows>.Run(job, off, bags, mean, o); break;
                case RowFormat.Int4: BagKernel<Int4Rows>.Run(job, off, bags, mean, o); break;
                default: throw new ArgumentOutOfRangeException(nameof(format), format, "unknown row format");
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
        if (output.Length < (long)bags * dim) throw new ArgumentException($"output holds {output.Length} floats, needs {bags} x {dim}", nameof(output));
        // One vectorized pass: as unsigned, negative ids are huge, so max < rows proves every id valid.
        // The kernels then read rows without further checks.
        if (!indices.IsEmpty && TensorPrimitives.Max(MemoryMarshal.Cast<long, ulong>(indices)) >= (ulong)rows)
        {
            for (int j = 0; j < indices.Length; j++)
            {
                if ((ulong)indices[j] >= (ulong)rows) ThrowIndexOutOfRange(indices, offsets, j, rows);
            }
        }
    }

    [DoesNotReturn]
    private static void ThrowIndexOutOfRange(ReadOnlySpan<long> indices, ReadOnlySpan<int> offsets, int position, long rows)
    {
        // offsets are validated by now (monotonic, last = count > position), so this scan stops.
        int bag = 0;
        while (offsets[bag + 1] <= position) bag++;
        throw new ArgumentOutOfRangeException(nameof(indices),
            $"index {indices[position]} at position {position} (bag {bag}) is outside [0, {rows})");
    }
}
