using Recsys.DenseCompute.Dlrm;

namespace Recsys.Router.Serving;

/// <summary>
/// One validated ranking request as the engine sees it: <see cref="Batch"/> samples of dense
/// features and one bag list per table in the model's table order. A table marked
/// <see cref="Broadcast"/> carries a single bag that every sample shares (the user side of a
/// context-and-candidates call), so it is looked up once instead of once per candidate.
/// </summary>
public sealed class RankInput
{
    public RankInput(int batch, float[] dense, SparseFeature[] sparse, bool[]? broadcast = null)
    {
        Batch = batch;
        Dense = dense;
        Sparse = sparse;
        Broadcast = broadcast ?? new bool[sparse.Length];
    }

    public int Batch { get; }
    public float[] Dense { get; }
    public SparseFeature[] Sparse { get; }
    public bool[] Broadcast { get; }

    /// <summary>Bags this request adds to table t's lookup: 1 when broadcast, else one per sample.</summary>
    public int BagsOf(int table) => Broadcast[table] ? 1 : Batch;

    public static RankInput From(RankBatch batch) => new(batch.Batch, batch.Dense, batch.Sparse);
}
