using Microsoft.Extensions.DependencyInjection;
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

    /// <summary>24 shards: a third silo wins none of them about once in 17,000 runs (2/3 to the 24th).</summary>
    public static readonly TestTable[] Joins = [new("j", 1200, 8, RowFormat.Fp16, 24)];

    /// <summary>Shard loads a silo runs at once in this cluster (EmbeddingShardOptions.MaxConcurrentActivations).</summary>
    public const int ActivationCap = 2;

    public string Root { get; } = TestModels.TempRoot("cluster");
    public string Models => Path.Combine(Root, "models");
    public string Data => Path.Combine(Root, "data");
    public float[][] FormatValues { get; private set; } = [];
    public float[] SpillValues { get; private set; } = [];
    public float[] UpdateValues { get; private set; } = [];
    public float[] MoveValues { get; private set; } = [];
    public float[] KillValues { get; private set; } = [];
    public float[] JoinValues { get; private set; } = [];
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
        JoinValues = TestModels.Write(Models, "joins", "1", Joins, seed: 6)[0];

        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureSilo((options, silo) => silo.AddEmbeddingShards(o =>
        {
            o.DataDirectory = Data;
            o.ModelsDirectory = Models;
            o.MemoryBudgetBytes = 256L << 20;
            o.ShardGrantCaps["spill"] = SpillShardBytes / 4;
            o.CheckpointInterval = TimeSpan.FromMinutes(10);
            o.MaxConcurrentActivations = ActivationCap;
            // Short settling so a joined silo's shards move within a test, not after it.
            o.RebalanceDelay = TimeSpan.FromSeconds(1);
            o.RebalanceInterval = TimeSpan.FromSeconds(2);
            o.Roles = options.SiloName == RouterSilo ? ["router"] : [EmbeddingShardOptions.EmbeddingRole];
        }));
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public IEnumerable<InProcessSiloHandle> EmbeddingSilos => Cluster.Silos.Where(s => s.IsActive && s.Name != RouterSilo);

    /// <summary>
    /// Starts an embedding silo (replacing one a test stopped, or joining) and waits until the
    /// shards it wins have moved to it, so the next test does not see shards moving under it.
    /// </summary>
    public async Task<InProcessSiloHandle> StartEmbeddingSiloAsync()
    {
        InProcessSiloHandle silo = await Cluster.StartAdditionalSiloAsync();
        await WaitForBalanceAsync(TimeSpan.FromSeconds(60));
        return silo;
    }

    /// <summary>
    /// Until every active silo sees exactly the active embedding silos as shard hosts, and no
    /// embedding silo holds a shard another one should host or is moving one.
    /// </summary>
    public async Task WaitForBalanceAsync(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        string why = "";
        while (Environment.TickCount64 < deadline)
        {
            why = Unbalanced();
            if (why.Length == 0) return;
            await Task.Delay(200);
        }
        throw new TimeoutException($"shards not balanced after {timeout.TotalSeconds:0} s: {why}");
    }

    private string Unbalanced()
    {
        var hosts = EmbeddingSilos.Select(s => s.SiloAddress).ToHashSet();
        foreach (InProcessSiloHandle silo in Cluster.Silos.Where(s => s.IsActive))
        {
            IServiceProvider services = silo.ServiceProvider;
            var active = services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values
                .Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress);
            var seen = services.GetRequiredService<Placement.EmbeddingSilos>().Filter(active, silo.SiloAddress).ToHashSet();
            if (!seen.SetEquals(hosts)) return $"{silo.Name} sees shard hosts [{string.Join(", ", seen)}], active are [{string.Join(", ", hosts)}]";
            if (!hosts.Contains(silo.SiloAddress)) continue;
            ShardRebalancer rebalancer = services.GetRequiredService<ShardRebalancer>();
            int misplaced = rebalancer.Misplaced().Count;
            if (misplaced > 0 || rebalancer.Moving > 0) return $"{silo.Name}: {misplaced} shards to move, {rebalancer.Moving} moving";
        }
        return "";
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
