using Microsoft.Extensions.DependencyInjection;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.Router.Batching;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;
using Recsys.Router.Scheduling;
using Recsys.Router.Serving;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

[Collection(RouterClusterCollection.Name)]
public sealed class BatcherTests(RouterCluster cluster)
{
    [Fact]
    public async Task A_full_queue_refuses_at_once_and_queued_requests_still_score_correctly()
    {
        // One batch of one sample at a time and room for one waiting request: a burst of 100
        // enqueued back to back cannot all fit, whatever the machine's speed, because each batch
        // needs a round trip to the shard silos before the next one starts.
        string dir = Path.Combine(cluster.ModelsDirectory, "dot", "1");
        DlrmSpec spec = ModelSpec.Load(Path.Combine(dir, "model.json")).RequireDlrm();
        DlrmDense dense;
        using (SafeTensorsFile weights = SafeTensorsFile.Open(Path.Combine(dir, spec.WeightsFile)))
        {
            dense = DlrmDense.Load(spec, weights);
        }
        var model = new ServedModel("dot", "1", spec, dense, cluster.Primary.Services.GetRequiredService<IGrainFactory>(), new ServingMetrics().For("dot"),
            new BatchingOptions { MaxBatch = 1, MaxDelay = TimeSpan.Zero, QueueCapacity = 1, MaxConcurrentBatches = 1 });
        RankBatch request = new RankRequestJson(spec).Parse(System.Text.Encoding.UTF8.GetBytes(Request("dot")));
        RankInput[] samples = Enumerable.Range(0, request.Batch).Select(b => Sample(request, b, spec.DenseFeatures)).ToArray();
        float[] expected = Expected("dot");

        var accepted = new List<(int Sample, Task<float[]> Scores)>();
        int refused = 0;
        for (int i = 0; i < 100; i++)
        {
            try
            {
                accepted.Add((i % samples.Length, model.Batcher.RankAsync(samples[i % samples.Length], CancellationToken.None)));
            }
            catch (QueueFullException)
            {
                refused++;
            }
        }
        foreach (var (sample, scores) in accepted)
        {
            AssertClose([expected[sample]], await scores, 2e-5f);
        }
        model.Retire();
        await model.Drained;

        Assert.True(refused > 0, "no request was refused");
        Assert.Equal(100, refused + accepted.Count);
    }

    [Fact]
    public async Task Batches_run_their_compute_as_ranking_units_on_the_scheduler()
    {
        string dir = Path.Combine(cluster.ModelsDirectory, "dot", "1");
        DlrmSpec spec = ModelSpec.Load(Path.Combine(dir, "model.json")).RequireDlrm();
        DlrmDense dense;
        using (SafeTensorsFile weights = SafeTensorsFile.Open(Path.Combine(dir, spec.WeightsFile)))
        {
            dense = DlrmDense.Load(spec, weights);
        }
        using var scheduler = new ComputeScheduler(1);
        var model = new ServedModel("dot", "1", spec, dense, cluster.Primary.Services.GetRequiredService<IGrainFactory>(), new ServingMetrics().For("dot"),
            new BatchingOptions { MaxBatch = 2, MaxDelay = TimeSpan.Zero, Scheduler = scheduler });
        RankBatch request = new RankRequestJson(spec).Parse(System.Text.Encoding.UTF8.GetBytes(Request("dot")));
        RankInput[] samples = Enumerable.Range(0, request.Batch).Select(b => Sample(request, b, spec.DenseFeatures)).ToArray();
        float[] expected = Expected("dot");

        // Best-effort work queued on the same scheduler must not change a single score.
        Task<int>[] other = Enumerable.Range(0, 8).Select(i => scheduler.RunAsync("vision", WorkClass.BestEffort, long.MaxValue, () => i)).ToArray();
        Task<float[]>[] scores = samples.Select(s => model.Batcher.RankAsync(s, CancellationToken.None)).ToArray();
        for (int i = 0; i < samples.Length; i++) AssertClose([expected[i]], await scores[i], 2e-5f);
        Assert.Equal(Enumerable.Range(0, 8), await Task.WhenAll(other));
        model.Retire();
        await model.Drained;

        // Every sample went through a Ranking slot, in batches of at most two.
        SchedulerModelMetrics ranking = scheduler.Metrics.For("dot", "ranking");
        Assert.Equal(samples.Length, ranking.Completed);
        Assert.InRange(ranking.BatchSize.Count, (samples.Length + 1) / 2, samples.Length);
        Assert.Equal(0, ranking.QueueDepth);
    }

    /// <summary>Sample b of a batch as its own one-sample request.</summary>
    private static RankInput Sample(RankBatch batch, int b, int denseFeatures)
    {
        var sparse = batch.Sparse.Select(f =>
        {
            int start = f.Offsets[b], end = f.Offsets[b + 1];
            return new SparseFeature(f.Ids[start..end], [0, end - start], f.Weights?[start..end]);
        }).ToArray();
        return new RankInput(1, batch.Dense.AsSpan(b * denseFeatures, denseFeatures).ToArray(), sparse);
    }
}
