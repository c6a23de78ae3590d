using Orleans.TestingHost;
using Recsys.DenseCompute.Embeddings;
using Recsys.EmbeddingGrains.Hosting;

namespace Recsys.EmbeddingGrains.Tests;

/// <summary>
/// One 3-silo in-process cluster for all grain tests: two silos with the embedding role, one
/// ("Silo_2") with only the router role. All silos share one data folder, as silos on
/// shared storage would, so a shard that moves recovers its checkpoint.
/// </summary>
public sealed class ShardCluster : IAsyncLifetime
{
    public const string RouterSilo = "Silo_2";

    public static readonly TestTable[] Formats =
    [
        new("fp32", 2000, 16, RowFormat.Fp32, 3),
        new("fp16", 1500, 24, RowFormat.Fp16, 2),
        new("int8", 2500, 32, RowFormat.Int8, 3),
        new("int4", 1800, 15, RowFormat.Int4, 2),
    ];

    /// <summary>Same rows in two models: "resident" shards hold all rows, "spill" shards get 1/4 of their bytes.</summary>
    public static readonly TestTable[] Spill = [new("big", 16000, 32, RowFormat.Fp32, 2)];

    public static readonly TestTable[] Updates = [new("u", 600, 8, RowFormat.Int8, 2)];

    public static readonly TestTable[] Moves = [new("m", 900, 12, RowFormat.Fp16, 12)];

    public static readonly TestTable[] Kills = [new("k", 700, 8, RowFormat.Int4, 12)];

    public string Root { get; } = TestModels.TempRoot("cluster");
    public string Models => Path.Combine(Root, "models");
    public string Data => Path.Combine(Root, "data");
    public float[][] FormatValues { get; private set; } = [];
    public float[] SpillValues { get; private set; } = [];
    public float[] UpdateValues { get; private set; } = [];
    public float[] MoveValues { get; private set; } = [];
    public float[] KillValues { get; private set; } = [];
    public InProcessTestCluster Cluster { get; private set; } = null!;
    public IGrainFactory Grains => Cluster.Client;

    public static long SpillShardBytes => (Spill[0].Rows / Spill[0].Shards) * RowLayout.RowBytes(Spill[0].Storage, Spill[0].Dim);

    public async Task InitializeAsync()
    {
        FormatValues = TestModels.Write(Models, "formats", "1", Formats, seed: 1);
        SpillValues = TestModels.Write(Models, "resident", "1", Spill, seed: 2)[0];
        TestModels.Write(Models, "spill", "1", Spill, seed: 2);
        UpdateValues = TestModels.Write(Models, "updates", "1", Updates, seed: 3)[0];
        MoveValues = TestModels.Write(Models, "moves", "1", Moves, seed: 4)[0];
        KillValues = TestModels.Write(Models, "kills", "1", Kills, seed: 5)[0];

        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((options, silo) => silo.AddEmbeddingShards(o =>
        {
            o.DataDirectory = Data;
            o.ModelsDirectory = Models;
            o.MemoryBudgetBytes = 256L << 20;
            o.ShardGrantCaps["spill"] = SpillShardBytes / 4;
            o.CheckpointInterval = TimeSpan.FromMinutes(10);
            o.Roles = options.SiloName == RouterSilo ? ["router"] : [EmbeddingShardOptions.EmbeddingRole];
        }));
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A store file still open by a stopped silo's finalizer: leave it in /tmp.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ShardClusterCollection : ICollectionFixture<ShardCluster>
{
    public const string Name = "shard cluster";
}
