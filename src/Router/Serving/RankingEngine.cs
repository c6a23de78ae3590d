using System.Buffers;
using System.Diagnostics;
using System.Numerics.Tensors;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;

namespace Recsys.Router.Serving;

/// <summary>
/// One engine pass over a merged batch: the shard slices sent per silo (<see cref="LookupFanOut"/>),
/// the bottom MLP while those calls are in flight, then the partial sums added per table, the
/// interaction and the top MLP.
/// </summary>
public static class RankingEngine
{
    /// <param name="giveUp">Fires when no request of the batch waits any more; shard calls lost with a silo are retried until then.</param>
    /// <returns>Batch x Events scores, row-major.</returns>
    public static async Task<float[]> RunAsync(ServedModel model, LookupBatch batch, CancellationToken giveUp = default)
    {
        DlrmSpec spec = model.Spec;
        TableSpec[] tables = spec.Tables;
        int n = batch.Batch;
        ModelMetrics metrics = model.Metrics;
        long started = Stopwatch.GetTimestamp();

        // Fan-out first so the shards work while this thread runs the bottom MLP; tables resident
        // on this silo are pooled in place by a helper, then by this thread once the MLP is done.
        LocalPooling? local = LocalPooling.Claim(model, batch);
        Task<PooledLookupResult?[][]> lookups = LookupFanOut.RunAsync(model, batch, giveUp, local?.IsLocal);
        local?.Start();

        // The dense steps hold a Ranking slot of the compute scheduler; the shard wait between them holds none.
        float[] bottomOut = new float[n * spec.BottomOutput];
        TimeSpan bottomTime;
        using (await model.Batcher.EngineSlotAsync(n, giveUp).ConfigureAwait(false))
        {
            long denseStart = Stopwatch.GetTimestamp();
            model.Dense.Bottom(batch.Dense, n, bottomOut);
            bottomTime = Stopwatch.GetElapsedTime(denseStart);
        }

        PooledLookupResult?[][] partials = await lookups.ConfigureAwait(false);
        if (local is not null)
        {
            PooledLookupResult?[][] pooledHere = await local.FinishAsync(giveUp).ConfigureAwait(false);
            for (int t = 0; t < tables.Length; t++)
            {
                if (local.IsLocal[t]) partials[t] = pooledHere[t];
            }
        }
        metrics.Observe(Stage.Lookup, Stopwatch.GetElapsedTime(started));

        float[] scores = new float[n * spec.Events];
        using (await model.Batcher.EngineSlotAsync(n, giveUp).ConfigureAwait(false))
        {
            long topStart = Stopwatch.GetTimestamp();
            float[] pooled = ReducePartials(tables, batch, partials);
            local?.ReturnBuffers();
            model.Dense.Top(bottomOut, pooled, n, scores);
            ArrayPool<float>.Shared.Return(pooled);
            metrics.Observe(Stage.Dense, bottomTime + Stopwatch.GetElapsedTime(topStart));
        }
        return scores;
    }

    /// <summary>Adds the shards' partial sums per table into the per-table batch x dim blocks the interaction reads.</summary>
    private static float[] ReducePartials(TableSpec[] tables, LookupBatch batch, PooledLookupResult?[][] partials)
    {
        int n = batch.Batch;
        int total = 0;
        foreach (TableSpec t in tables) total += n * t.Dim;
        float[] pooled = ArrayPool<float>.Shared.Rent(Math.Max(1, total));
        int blockStart = 0;
        for (int t = 0; t < tables.Length; t++)
        {
            int dim = tables[t].Dim;
            SparseFeature feature = batch.Tables[t];
            int bags = feature.Bags;
            int[]? sampleBag = batch.SampleBag[t];
            // Bags land directly in the block unless some are shared (broadcast): then sum into a
            // scratch and gather each sample's bag.
            float[]? scratch = sampleBag is null ? null : ArrayPool<float>.Shared.Rent(Math.Max(1, bags * dim));
            Span<float> sums = scratch is null ? pooled.AsSpan(blockStart, n * dim) : scratch.AsSpan(0, bags * dim);
            sums.Clear();
            foreach (PooledLookupResult? partial in partials[t])
            {
                if (partial is null) continue;
                if (partial.Bags != bags || partial.Dim != dim || partial.Pooled.Length < bags * dim)
                {
                    throw new InvalidOperationException($"shard of table {tables[t].Name} answered {partial.Bags} x {partial.Dim} for {bags} x {dim}");
                }
                TensorPrimitives.Add(sums, partial.Pooled.AsSpan(0, bags * dim), sums);
            }
            if (tables[t].Pooling == Pooling.Mean)
            {
                for (int b = 0; b < bags; b++)
                {
                    int size = feature.Offsets[b + 1] - feature.Offsets[b];
                    if (size > 1) TensorPrimitives.Multiply(sums.Slice(b * dim, dim), 1f / size, sums.Slice(b * dim, dim));
                }
            }
            if (scratch is not null)
            {
                Span<float> block = pooled.AsSpan(blockStart, n * dim);
                for (int s = 0; s < n; s++) sums.Slice(sampleBag![s] * dim, dim).CopyTo(block.Slice(s * dim, dim));
                ArrayPool<float>.Shared.Return(scratch);
            }
            blockStart += n * dim;
        }
        return pooled;
    }
}
