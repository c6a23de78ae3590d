using FASTER.core;

namespace Recsys.EmbeddingGrains.Storage;

/// <summary>
/// A FASTER client session and its functions. A session is single-threaded: it is rented from
/// <see cref="ShardStore"/> for one operation (which may await pending reads) and returned after.
/// The safe (epoch-per-call) ClientSession is used on purpose, so no epoch is held across an await.
/// </summary>
internal sealed class RowSession(ClientSession<long, SpanByte, RowReadInput, Empty, Empty, RowStoreFunctions> session, RowStoreFunctions functions) : IDisposable
{
    public ClientSession<long, SpanByte, RowReadInput, Empty, Empty, RowStoreFunctions> Session { get; } = session;
    public RowStoreFunctions Functions { get; } = functions;

    public void Dispose() => Session.Dispose();
}
