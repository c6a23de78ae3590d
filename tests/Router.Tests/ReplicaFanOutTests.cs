using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Hosting;
using Recsys.Router.Batching;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;
using Recsys.Router.Serving;

namespace Recsys.Router.Tests;

/// <summary>
/// Front end ("Silo_0", router role) + 2 embedding silos serving the dot fixture with 4 shards per
/// table and 2 replicas per shard: every shard has a replica on each embedding silo. One cluster
/// per test class (a test that kills a silo disturbs no other).
/// </summary>
public sealed class ReplicaCluster : IAsyncLifetime
{
    public const string FrontEndSilo = "Silo_0";
    public const string Model = "replicated";
    public const int Shards = 4;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "recsys-replica-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public InProcessTestCluster Cluster { get; private set; } = null!;
    public DlrmSpec Spec { get; private set; } = null!;
    public string VersionDirectory => Path.Combine(_root, "models", Model, "1");
    public IGrainFactory FrontEnd => Cluster.Silos.Single(s => s.Name == FrontEndSilo).ServiceProvider.GetRequiredService<IGrainFactory>();

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(VersionDirectory);
        string source = RouterCluster.FixtureDirectory("dot");
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "model.json")))!.AsObject();
        foreach (JsonNode? table in spec["tables"]!.AsArray())
        {
            table!["shards"] = Shards;
            table["replicas"] = 2;
        }
        File.WriteAllText(Path.Combine(VersionDirectory, "model.json"), spec.ToJsonString());
        File.Copy(Path.Combine(source, "weights.safetensors"), Path.Combine(VersionDirectory, "weights.safetensors"));
        Spec = ModelSpec.Load(Path.Combine(VersionDirectory, "model.json")).RequireDlrm();

        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((options, silo) => silo.AddEmbeddingShards(o =>
        {
            o.DataDirectory = Path.Combine(_root, "data");
            o.ModelsDirectory = Path.Combine(_root, "models");
            o.MemoryBudgetBytes = 64L << 20;
            o.Roles = options.SiloName == FrontEndSilo ? ["router"] : [EmbeddingShardOptions.EmbeddingRole];
        }));
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task<ServedModel> ServeAsync(bool perSilo, ServingMetrics metrics)
    {
        DlrmDense dense;
        using (SafeTensorsFile weights = SafeTensorsFile.Open(Path.Combine(VersionDirectory, Spec.WeightsFile)))
        {
            dense = DlrmDense.Load(Spec, weights);
        }
        var model = new ServedModel(Model, "1", Spec, dense, FrontEnd, metrics.For(Model), new BatchingOptions()) { LookupPerSilo = perSilo };
        await model.WarmUpAsync(progress: null);
        return model;
    }

    /// <summary>A batch of random bags (1-3 ids each) touching most shards.</summary>
    public RankBatch RandomBatch(int seed, int samples = 12)
    {
        var rng = new Random(seed);
        float[] dense = Enumerable.Range(0, samples * Spec.DenseFeatures).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var sparse = new SparseFeature[Spec.Tables.Length];
        for (int t = 0; t < sparse.Length; t++)
        {
            var ids = new List<long>();
            var offsets = new int[samples + 1];
            for (int b = 0; b < samples; b++)
            {
                int size = rng.Next(1, 4);
                for (int j = 0; j < size; j++) ids.Add(rng.NextInt64(Spec.Tables[t].Rows));
                offsets[b + 1] = ids.Count;
            }
            sparse[t] = new SparseFeature([.. ids], offsets, null);
        }
        return new RankBatch(samples, dense, sparse);
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A FASTER log still open for a moment: the temp folder is harmless.
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
