using FASTER.core;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.EmbeddingGrains.Storage;

internal sealed partial class RowStoreFunctions
{
    // Records in the read-only region and records read back from disk land here; both pool the
    // row where it lies, so no row is ever copied out to the caller.
    public override bool SingleReader(ref long key, ref RowReadInput input, ref SpanByte value, ref Empty dst, ref ReadInfo readInfo)
    {
        PoolRow(ref input, ref value);
        return true;
    }

    // Records in the mutable region: same work. Rows are rewritten whole by upserts, and a
    // lookup racing an upsert of the same row may see either version, as with any cache.
    public override bool ConcurrentReader(ref long key, ref RowReadInput input, ref SpanByte value, ref Empty dst, ref ReadInfo readInfo)
    {
        PoolRow(ref input, ref value);
        return true;
    }

    public override void ReadCompletionCallback(ref long key, ref RowReadInput input, ref Empty output, Empty ctx, Status status, RecordMetadata recordMetadata)
    {
        if (!status.Found) Missing++;
    }

    private unsafe void PoolRow(ref RowReadInput input, ref SpanByte value)
    {
        var row = new ReadOnlySpan<byte>(value.ToPointer(), _rowBytes);
        RowCodec.Accumulate(row, _format, _dim, input.Weight, new Span<float>(input.Accumulator, _dim));
        if (input.AdmitTo != null) row.CopyTo(new Span<byte>(input.AdmitTo, _rowBytes));
    }
}
