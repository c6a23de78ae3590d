using FASTER.core;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.EmbeddingGrains.Storage;

/// <summary>
/// The narrow waist between the shard and FASTER: every session callback lives in this class,
/// one file per operation (RowStoreFunctions.Read.cs, RowStoreFunctions.Upsert.cs). Keys are
/// local slots, values are encoded rows as SpanByte. One instance per session, because it also
/// counts reads that completed without finding their row (a session is single-threaded, so the
/// counter needs no synchronization).
/// </summary>
internal sealed partial class RowStoreFunctions(RowFormat format, int dim, int rowBytes)
    : FunctionsBase<long, SpanByte, RowReadInput, Empty, Empty>
{
    private readonly RowFormat _format = format;
    private readonly int _dim = dim;
    private readonly int _rowBytes = rowBytes;

    /// <summary>Reads that found no row since the last <see cref="TakeMissing"/>.</summary>
    public int Missing { get; private set; }

    public int TakeMissing()
    {
        int n = Missing;
        Missing = 0;
        return n;
    }
}
