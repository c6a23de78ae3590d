using System.Text.Json.Nodes;
using Orleans.TestingHost;
using Recsys.DenseCompute.Dlrm;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Batching;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;
using Recsys.Router.Serving;

namespace Recsys.Router.Tests;

/// <summary>
/// The dot fixture with 4 shards per table and 2 replicas per shard: every shard has a replica on
/// each embedding silo.
/// </summary>
public sealed class ReplicaCluster() : ShardedTestCluster(Model)
{
    public const string Model = "replicated";
    public const int Shards = 4;

    protected override void Shape(JsonArray tables)
    {
        foreach (JsonNode? table in tables)
        {
            table!["shards"] = Shards;
            table["replicas"] = 2;
        }
    }
}

/// <summary>Replicated shards through the real ranking engine: right scores, both replicas used, /metrics shows the spread.</summary>
public sealed class ReplicaFanOutTests(ReplicaCluster cluster) : IClassFixture<ReplicaCluster>
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Concurrent_batches_spread_over_both_replicas_and_score_like_the_in_process_model(bool perSilo)
    {
        var metrics = new ServingMetrics();
        ServedModel model = await cluster.ServeAsync(perSilo, metrics);
        try
        {
            using DlrmModel reference = DlrmModel.Load(cluster.VersionDirectory);
            // Warm-up activated every replica: each shard's two replicas live on the two embedding silos.
            for (int t = 0; t < cluster.Spec.Tables.Length; t++)
            {
                for (int s = 0; s < ReplicaCluster.Shards; s++)
                {
                    ShardReplicas replicas = model.Replicas(t, s);
                    Assert.Equal(2, replicas.Count);
                    ShardStatus[] statuses = await Task.WhenAll(replicas.All.Select(g => g.GetStatus()));
                    Assert.NotEqual(statuses[0].SiloAddress, statuses[1].SiloAddress);
                    Assert.Equal(statuses[1].SiloAddress, model.Locations.Get(t, s, 1));
                }
            }
            RankBatch[] batches = Enumerable.Range(0, 48).Select(i => cluster.RandomBatch(seed: 300 + i)).ToArray();
            // Eight at a time: a slice finds its first replica busy with another batch's call and goes to the sibling.
            for (int round = 0; round < batches.Length; round += 8)
            {
                RankBatch[] wave = batches[round..(round + 8)];
                float[][] scores = await Task.WhenAll(wave.Select(b => RankingEngine.RunAsync(model, LookupBatch.Merge([RankInput.From(b)], cluster.Spec.DenseFeatures))));
                for (int i = 0; i < wave.Length; i++) HttpHelpers.AssertClose(reference.Score(wave[i]), scores[i], 2e-6f);
            }

            var perReplica = new long[2];
            for (int t = 0; t < cluster.Spec.Tables.Length; t++)
            {
                for (int s = 0; s < ReplicaCluster.Shards; s++)
                {
                    for (int r = 0; r < 2; r++)
                    {
                        perReplica[r] += model.Replicas(t, s).Calls(r);
                        Assert.Equal(0, model.Replicas(t, s).Outstanding(r));
                    }
                }
            }
            Assert.True(perReplica[0] > 0 && perReplica[1] > 0, $"calls per replica: {perReplica[0]} and {perReplica[1]}: the choice never used one of them");
            // Every slice was counted on the replica it went to (more only if a slow call was hedged on a busy machine).
            Assert.True(perReplica[0] + perReplica[1] >= model.Metrics.ShardCalls, $"{perReplica[0] + perReplica[1]} replica calls for {model.Metrics.ShardCalls} slices");

            string text = PrometheusText.Write(metrics, []);
            string name = cluster.Spec.Tables[0].Name;
            Assert.Contains($"recsys_replica_calls_total{{model=\"{ReplicaCluster.Model}\",table=\"{name}\",shard=\"0\",replica=\"1\"}} {model.Replicas(0, 0).Calls(1)}\n", text, StringComparison.Ordinal);
            Assert.Contains($"recsys_replica_failovers_total{{model=\"{ReplicaCluster.Model}\"}} {model.Metrics.ReplicaFailovers}\n", text, StringComparison.Ordinal);
        }
        finally
        {
            model.Retire();
        }
    }
}

/// <summary>
/// A silo with one replica of every shard dies abruptly: every batch still scores right, with no
/// failure, because each slice that went to the dead silo's replica is retried on the sibling at once.
/// </summary>
public sealed class ReplicaLossTests(ReplicaCluster cluster, Xunit.Abstractions.ITestOutputHelper log) : IClassFixture<ReplicaCluster>
{
    [Theory]
    [InlineData(false)]
    public async Task Killing_an_embedding_silo_fails_no_batch_because_the_sibling_replicas_answer(bool perSilo)
    {
        var metrics = new ServingMetrics();
        ServedModel model = await cluster.ServeAsync(perSilo, metrics);
        try
        {
            using DlrmModel reference = DlrmModel.Load(cluster.VersionDirectory);
            RankBatch[] batches = Enumerable.Range(0, 24).Select(i => cluster.RandomBatch(seed: 500 + i)).ToArray();
            LookupBatch[] lookups = batches.Select(b => LookupBatch.Merge([RankInput.From(b)], cluster.Spec.DenseFeatures)).ToArray();
            for (int i = 0; i < 4; i++) HttpHelpers.AssertClose(reference.Score(batches[i]), await RankingEngine.RunAsync(model, lookups[i]), 2e-6f);

            InProcessSiloHandle victim = cluster.Cluster.Silos.First(h => h.Name != ReplicaCluster.FrontEndSilo);
            ShardStatus[] before = await Task.WhenAll(model.AllShards.Select(g => g.GetStatus()));
            log.WriteLine($"victim {victim.SiloAddress}; before: {string.Join(" ", before.Select(b => $"{b.Key}@{b.SiloAddress}"))}");
            await cluster.Cluster.KillSiloAsync(victim);
            // Straight after the kill, before membership has declared the silo dead: four at a time, each within a 5 s deadline.
            for (int round = 0; round < batches.Length; round += 4)
            {
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                int[] wave = Enumerable.Range(round, 4).ToArray();
                float[][] scores = await Task.WhenAll(wave.Select(i => RankingEngine.RunAsync(model, lookups[i], deadline.Token)));
                for (int k = 0; k < wave.Length; k++) HttpHelpers.AssertClose(reference.Score(batches[wave[k]]), scores[k], 2e-6f);
            }
            ShardStatus[] after = await Task.WhenAll(model.AllShards.Select(g => g.GetStatus()));
            log.WriteLine($"failovers {model.Metrics.ReplicaFailovers}; after: {string.Join(" ", after.Select(b => $"{b.Key}@{b.SiloAddress}"))}");
            // Whether slices failed over depends on how soon the front end learns of the death: once it
            // has, Orleans itself re-places the lost replicas on the survivor. ReplicaRetryTests pins the
            // sibling retry down; the Cluster test kills a real process under load.
        }
        finally
        {
            model.Retire();
        }
    }
}
