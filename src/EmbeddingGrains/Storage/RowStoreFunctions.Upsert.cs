using FASTER.core;

namespace Recsys.EmbeddingGrains.Storage;

internal sealed partial class RowStoreFunctions
{
    // A new record (insert, or read-copy-update of a record no longer mutable): copy the encoded row.
    public override bool SingleWriter(ref long key, ref RowReadInput input, ref SpanByte src, ref SpanByte dst, ref Empty output, ref UpsertInfo upsertInfo, WriteReason reason)
    {
        src.CopyTo(ref dst);
        return true;
    }

    // In place in the mutable region. Rows of a table all have the same length, so the record
    // always has room; returning false would make FASTER append a new record instead.
    public override bool ConcurrentWriter(ref long key, ref RowReadInput input, ref SpanByte src, ref SpanByte dst, ref Empty output, ref UpsertInfo upsertInfo)
    {
        if (dst.Length != src.Length) return false;
        src.CopyTo(ref dst);
        return true;
    }
}
