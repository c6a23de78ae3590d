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

namespace Recsys.Router.Tests;

/// <summary>
/// A three-silo in-process cluster for the per-silo lookup path: "Silo_0" is the front end (router
/// role only), "Silo_1" and "Silo_2" hold the shards. The dot fixture is served with 5, 6 and 8
/// shards per table, so both embedding silos hold several shards of one batch. Each test class
/// gets its own cluster (class fixture), so one that stops a silo disturbs no other.
/// </summary>
public sealed class FanOutCluster : IAsyncLifetime
{
    public const string FrontEndSilo = "Silo_0";
    public const string Model = "fanout";
    public static readonly int[] ShardsPerTable = [5, 6, 8];

    private readonly string _root = Path.Combine(Path.GetTempPath(), "recsys-fanout-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public InProcessTestCluster Cluster { get; private set; } = null!;
    public DlrmSpec Spec { get; private set; } = null!;
    public string VersionDirectory => Path.Combine(_root, "models", Model, "1");

    /// <summary>The front end's grain factory: calls leave from the router silo, as a real front end's do.</summary>
    public IGrainFactory FrontEnd => Cluster.Silos.Single(s => s.Name == FrontEndSilo).ServiceProvider.GetRequiredService<IGrainFactory>();

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(VersionDirectory);
        string source = RouterCluster.FixtureDirectory("dot");
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "model.json")))!.AsObject();
        JsonArray tables = spec["tables"]!.AsArray();
        for (int t = 0; t < tables.Count; t++) tables[t]!["shards"] = ShardsPerTable[t];
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

    /// <summary>A served version with its own metrics, shards warmed (so the shard -> silo map is full).</summary>
    public async Task<ServedModel> ServeAsync()
    {
        DlrmDense dense;
        using (SafeTensorsFile weights = SafeTensorsFile.Open(Path.Combine(VersionDirectory, Spec.WeightsFile)))
        {
            dense = DlrmDense.Load(Spec, weights);
        }
        var model = new ServedModel(Model, "1", Spec, dense, FrontEnd, new ServingMetrics().For(Model), new BatchingOptions()) { LookupPerSilo = true };
        await model.WarmUpAsync(progress: null);
        return model;
    }

    public IEmbeddingShardGrain Shard(int table, int shard) =>
        FrontEnd.GetGrain<IEmbeddingShardGrain>(ShardKey.Format(Model, "1", Spec.Tables[table].Name, shard));

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

    /// <summary>touched[t][s]: the batch has an id owned by shard s of table t (id mod S), computed apart from the code under test.</summary>
    public static bool[][] Touched(RankBatch batch) =>
        batch.Sparse.Select((f, t) =>
        {
            var touched = new bool[ShardsPerTable[t]];
            foreach (long id in f.Ids) touched[id % touched.Length] = true;
            return touched;
        }).ToArray();

    public async Task<ShardStatus[][]> StatusesAsync() =>
        await Task.WhenAll(ShardsPerTable.Select((shards, t) => Task.WhenAll(Enumerable.Range(0, shards).Select(s => Shard(t, s).GetStatus()))));

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
