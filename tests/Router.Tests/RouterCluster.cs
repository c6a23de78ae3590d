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

    private TestServer _server = null!;

    public RecsysServer Primary => _server.Server;
    public RecsysServer Secondary => _server.EmbeddingSilos[0];
    public RecsysServer Third => _server.EmbeddingSilos[1];
    public HttpClient Http => _server.Http;
    public string ModelsDirectory => _server.ModelsDirectory;

    public static string FixtureDirectory(string fixture) => Path.Combine(AppContext.BaseDirectory, "fixtures", "dlrm", fixture);

    public async Task InitializeAsync() =>
        _server = await TestServer.StartAsync("router", models =>
        {
            foreach ((string fixture, int[] shards) in Models) TestModels.WriteDlrm(fixture, Path.Combine(models, fixture, "1"), shards);
            TestModels.WriteDlrm("dot", Path.Combine(models, SwapModel, "1"), [2, 2, 2]);
        }, options => options with
        {
            ApiKey = ApiKey,
            MaxBodyBytes = MaxBodyBytes,
            Deadline = TimeSpan.FromSeconds(20),
            Batching = new BatchingOptions { MaxBatch = 64, MaxDelay = TimeSpan.FromMilliseconds(1) },
        }, embeddingSilos: 2);

    /// <summary>Copies a fixture into the repository as models/{name ?? fixture}/{version}, with per-table shards and optionally another row format.</summary>
    public void WriteModel(string fixture, string version, int[] shards, string? storage, string? name = null) =>
        TestModels.WriteDlrm(fixture, Path.Combine(ModelsDirectory, name ?? fixture, version), shards, storage);

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class RouterClusterCollection : ICollectionFixture<RouterCluster>
{
    public const string Name = "router cluster";
}
