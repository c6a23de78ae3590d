using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Hosting;
using Recsys.Router.Batching;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;

namespace Recsys.Router.Tests;

/// <summary>
/// A three-silo in-process cluster serving the dot fixture: "Silo_0" is the front end (router role
/// only), "Silo_1" and "Silo_2" hold the shards. Each subclass sets its tables' shards (and
/// replicas); each test class gets its own cluster (class fixture), so one that stops a silo
/// disturbs no other.
/// </summary>
public abstract class ShardedTestCluster(string model) : IAsyncLifetime
{
    public const string FrontEndSilo = "Silo_0";

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"recsys-{model}-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public InProcessTestCluster Cluster { get; private set; } = null!;
    public DlrmSpec Spec { get; private set; } = null!;
    public string VersionDirectory => Path.Combine(_root, "models", model, "1");

    /// <summary>The front end's grain factory: calls leave from the router silo, as a real front end's do.</summary>
    public IGrainFactory FrontEnd => Cluster.Silos.Single(s => s.Name == FrontEndSilo).ServiceProvider.GetRequiredService<IGrainFactory>();

    /// <summary>Sets "shards" (and "replicas") on the fixture's model.json tables.</summary>
    protected abstract void Shape(JsonArray tables);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(VersionDirectory);
        string source = RouterCluster.FixtureDirectory("dot");
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "model.json")))!.AsObject();
        Shape(spec["tables"]!.AsArray());
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

    /// <summary>A served version with the given metrics, every shard (and replica) warmed, so the shard -> silo map is full.</summary>
    public async Task<ServedModel> ServeAsync(bool perSilo, ServingMetrics metrics)
    {
        DlrmDense dense;
        using (SafeTensorsFile weights = SafeTensorsFile.Open(Path.Combine(VersionDirectory, Spec.WeightsFile)))
        {
            dense = DlrmDense.Load(Spec, weights);
        }
        var served = new ServedModel(model, "1", Spec, dense, FrontEnd, metrics.For(model), new BatchingOptions()) { LookupPerSilo = perSilo };
        await served.WarmUpAsync(progress: null);
        return served;
    }

    /// <summary>A batch of random bags (1-3 ids each) that touches most shards of every table.</summary>
    public RankBatch RandomBatch(int seed, int samples = 16)
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
