using Recsys.DenseCompute.Dlrm;

namespace Recsys.Router.Serving;

/// <summary>
/// What one engine pass computes: several requests merged into one batch. Per table, the bags
/// actually looked up (<see cref="Tables"/>) and, when some bags are shared by several samples,
/// the bag each sample reads (<see cref="SampleBag"/>; null means sample b reads bag b).
/// </summary>
public sealed class LookupBatch
{
    private LookupBatch(int batch, float[] dense, SparseFeature[] tables, int[]?[] sampleBag)
    {
        Batch = batch;
        Dense = dense;
        Tables = tables;
        SampleBag = sampleBag;
    }

    public int Batch { get; }
    public float[] Dense { get; }
    public SparseFeature[] Tables { get; }
    public int[]?[] SampleBag { get; }

    /// <summary>Concatenates requests in order: samples, dense rows and bags keep the request order.</summary>
    public static LookupBatch Merge(IReadOnlyList<RankInput> inputs, int denseFeatures)
    {
        if (inputs.Count == 1 && !inputs[0].Broadcast.Contains(true))
        {
            RankInput only = inputs[0];
            return new LookupBatch(only.Batch, only.Dense, only.Sparse, new int[]?[only.Sparse.Length]);
        }
        int batch = 0;
        foreach (RankInput r in inputs) batch += r.Batch;
        var dense = new float[batch * denseFeatures];
        int at = 0;
        foreach (RankInput r in inputs)
        {
            r.Dense.AsSpan(0, r.Batch * denseFeatures).CopyTo(dense.AsSpan(at));
            at += r.Batch * denseFeatures;
        }
        int tableCount = inputs[0].Sparse.Length;
        var tables = new SparseFeature[tableCount];
        var sampleBag = new int[]?[tableCount];
        for (int t = 0; t < tableCount; t++)
        {
            (tables[t], sampleBag[t]) = MergeTable(inputs, t, batch);
        }
        return new LookupBatch(batch, dense, tables, sampleBag);
    }

    private static (SparseFeature, int[]?) MergeTable(IReadOnlyList<RankInput> inputs, int t, int batch)
    {
        int ids = 0, bags = 0;
        bool anyWeights = false, anyBroadcast = false;
        foreach (RankInput r in inputs)
        {
            ids += r.Sparse[t].Ids.Length;
            bags += r.BagsOf(t);
            anyWeights |= r.Sparse[t].Weights is not null;
            anyBroadcast |= r.Broadcast[t];
        }
        var mergedIds = new long[ids];
        var offsets = new int[bags + 1];
        float[]? weights = anyWeights ? new float[ids] : null;
        int[]? map = anyBroadcast ? new int[batch] : null;
        int idAt = 0, bagAt = 0, sampleAt = 0;
        foreach (RankInput r in inputs)
        {
            SparseFeature f = r.Sparse[t];
            f.Ids.CopyTo(mergedIds, idAt);
            if (weights is not null)
            {
                if (f.Weights is null) weights.AsSpan(idAt, f.Ids.Length).Fill(1f);
                else f.Weights.CopyTo(weights, idAt);
            }
            int own = r.BagsOf(t);
            for (int b = 0; b < own; b++) offsets[bagAt + b + 1] = idAt + f.Offsets[b + 1];
            if (map is not null)
            {
                for (int s = 0; s < r.Batch; s++) map[sampleAt + s] = r.Broadcast[t] ? bagAt : bagAt + s;
            }
            idAt += f.Ids.Length;
            bagAt += own;
            sampleAt += r.Batch;
        }
        return (new SparseFeature(mergedIds, offsets, weights), map);
    }
}
