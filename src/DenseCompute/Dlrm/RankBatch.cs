namespace Recsys.DenseCompute.Dlrm;

/// <summary>
/// One table's sparse input for a batch in CSR form: sample b's bag is Ids[Offsets[b] .. Offsets[b+1]).
/// Weights is null or one weight per id.
/// </summary>
public sealed class SparseFeature(long[] ids, int[] offsets, float[]? weights)
{
    public long[] Ids { get; } = ids;
    public int[] Offsets { get; } = offsets;
    public float[]? Weights { get; } = weights;
    public int Bags => Offsets.Length - 1;
}

/// <summary>
/// A validated ranking batch: Batch samples of dense features (Batch x DenseFeatures, row-major)
/// and one <see cref="SparseFeature"/> per table, in the model's table order.
/// </summary>
public sealed class RankBatch(int batch, float[] dense, SparseFeature[] sparse)
{
    public int Batch { get; } = batch;
    public float[] Dense { get; } = dense;
    public SparseFeature[] Sparse { get; } = sparse;
}

/// <summary>
/// A request that does not fit the model: <see cref="Field"/> names the offending part of the
/// body (e.g. "sparse.C3[2][5]") and <see cref="Status"/> is the HTTP status to answer with.
/// </summary>
public sealed class InvalidRequestException(string field, string problem, int status = 400)
    : Exception($"{field}: {problem}")
{
    public string Field { get; } = field;
    public int Status { get; } = status;
}
