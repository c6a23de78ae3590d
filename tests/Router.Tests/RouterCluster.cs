using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Recsys.Router.Batching;
using Recsys.Router.Hosting;

namespace Recsys.Router.Tests;

/// <summary>
/// A three-silo cluster in this process, shared by every HTTP test: the primary silo has only the
/// frontend role (Kestrel, batcher, dense) and two silos with only the embedding role join it
/// through localhost clustering. Every shard therefore lives on another silo than the front end,
/// so every lookup crosses a real silo-to-silo connection. Models come from the PyTorch
/// fixtures, re-declared with 1-3 shards per table.
/// </summary>
public sealed class RouterCluster : IAsyncLifetime
{
    public const string ApiKey = "test-admin-key";
    public const long MaxBodyBytes = 256 * 1024;

    /// <summary>A copy of the dot fixture that the version-switch test moves to version 2.</summary>
    public const string SwapModel = "swap";

    /// <summary>Fixture directory -> served model name and the shards each table gets.</summary>
    public static readonly (string Fixture, int[] Shards)[] Models =
    [
        ("dot", [2, 3, 1]),
        ("multi-event", [2, 2, 2]),
        ("mean", [3, 2, 2]),
        ("weighted", [2, 2, 2]),
        ("cat", [2, 1, 3]),
    ];

    private readonly string _root = Path.Combine(Path.GetTempPath(), "recsys-router-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public RecsysServer Primary { get; private set; } = null!;
    public RecsysServer Secondary { get; private set; } = null!;
    public RecsysServer Third { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public string ModelsDirectory => Path.Combine(_root, "models");

    public static string FixtureDirectory(string fixture) => Path.Combine(AppContext.BaseDirectory, "fixtures", "dlrm", fixture);

    public async Task InitializeAsync()
    {
        foreach ((string fixture, int[] shards) in Models) WriteModel(fixture, "1", shards, storage: null);
        WriteModel("dot", "1", [2, 2, 2], storage: null, name: SwapModel);
        int primarySilo = FreePort(), primaryGateway = FreePort();
        var primary = new ServeOptions
        {
            ModelsDirectory = ModelsDirectory,
            DataDirectory = Path.Combine(_root, "data-primary"),
            Role = SiloRole.Frontend,
            Port = 0,
            SiloPort = primarySilo,
            GatewayPort = primaryGateway,
            ClusterId = "router-tests-" + Guid.NewGuid().ToString("N")[..6],
            ApiKey = ApiKey,
            MaxBodyBytes = MaxBodyBytes,
            WriteDemoModelWhenEmpty = false,
            Deadline = TimeSpan.FromSeconds(20),
            Batching = new BatchingOptions { MaxBatch = 64, MaxDelay = TimeSpan.FromMilliseconds(1) },
        };
        Primary = await RecsysServer.StartAsync(primary, TextWriter.Null, loadModels: false);
        Secondary = await StartEmbeddingSilo(primary, "data-secondary");
        Third = await StartEmbeddingSilo(primary, "data-third");
        await Primary.LoadModelsAsync();
        Http = new HttpClient { BaseAddress = Primary.Address, Timeout = TimeSpan.FromSeconds(60) };
    }

    private Task<RecsysServer> StartEmbeddingSilo(ServeOptions primary, string data) =>
        RecsysServer.StartAsync(primary with
        {
            Role = SiloRole.Embedding,
            DataDirectory = Path.Combine(_root, data),
            SiloPort = FreePort(),
            GatewayPort = FreePort(),
            PrimarySilo = new IPEndPoint(IPAddress.Loopback, primary.SiloPort),
        }, TextWriter.Null, loadModels: false);

    /// <summary>Copies a fixture into the repository as models/{fixture}/{version}, with per-table shards and optionally another row format.</summary>
    public void WriteModel(string fixture, string version, int[] shards, string? storage, string? name = null)
    {
        string source = FixtureDirectory(fixture);
        string target = Path.Combine(ModelsDirectory, name ?? fixture, version);
        Directory.CreateDirectory(target);
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "model.json")))!.AsObject();
        JsonArray tables = spec["tables"]!.AsArray();
        for (int t = 0; t < tables.Count; t++)
        {
            tables[t]!["shards"] = shards[t % shards.Length];
            if (storage is not null) tables[t]!["storage"] = storage;
        }
        // int8/int4 fixtures ship FBGEMM-prepacked rows; fp16 rows are encoded from the fp32 tensors.
        string weights = storage is "int8" or "int4" ? $"weights-{storage}.safetensors" : "weights.safetensors";
        spec["weights"] = weights;
        File.WriteAllText(Path.Combine(target, "model.json"), spec.ToJsonString());
        File.Copy(Path.Combine(source, weights), Path.Combine(target, weights), overwrite: true);
        File.Copy(Path.Combine(source, "request.json"), Path.Combine(target, "sample-request.json"), overwrite: true);
    }

    public async Task DisposeAsync()
    {
        Http?.Dispose();
        if (Third is not null) await Third.DisposeAsync();
        if (Secondary is not null) await Secondary.DisposeAsync();
        if (Primary is not null) await Primary.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // FASTER may still hold a log file handle for a moment; the temp folder is harmless.
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

[CollectionDefinition(Name)]
public sealed class RouterClusterCollection : ICollectionFixture<RouterCluster>
{
    public const string Name = "router cluster";
}
