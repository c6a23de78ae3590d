using System.Net;
using Recsys.Router.Hosting;

using Recsys.Tests.Shared;

namespace Recsys.Router.Tests;

/// <summary>
/// A real server for the HTTP fixtures: a temporary repository the fixture fills, an in-process
/// Orleans silo with Kestrel on a free port (optionally with embedding-only silos joined to it),
/// and an HttpClient on it. The fixtures differ only in their models and a few options.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly List<RecsysServer> _embeddingSilos = [];

    private TestServer(string root) => Root = root;

    /// <summary>The temporary folder holding models/ and the silos' data; deleted on dispose.</summary>
    public string Root { get; }

    public string ModelsDirectory => Path.Combine(Root, "models");

    /// <summary>The node that serves HTTP: every role, or the front end when embedding silos were asked for.</summary>
    public RecsysServer Server { get; private set; } = null!;

    /// <summary>Silos with only the embedding role, joined to <see cref="Server"/> through localhost clustering.</summary>
    public IReadOnlyList<RecsysServer> EmbeddingSilos => _embeddingSilos;

    public HttpClient Http { get; private set; } = null!;

    /// <summary>
    /// Writes the models (<paramref name="writeModels"/> gets the repository folder), then starts the
    /// server with the tests' defaults (30 s deadline, no demo model) changed by <paramref name="configure"/>.
    /// With <paramref name="embeddingSilos"/> &gt; 0 the server is the front end only, and it loads its
    /// models once those silos have joined, so every shard lives on another silo.
    /// </summary>
    public static async Task<TestServer> StartAsync(string name, Action<string> writeModels, Func<ServeOptions, ServeOptions>? configure = null,
        int embeddingSilos = 0, TimeSpan? httpTimeout = null)
    {
        var server = new TestServer(Path.Combine(Path.GetTempPath(), $"recsys-{name}-tests-{Guid.NewGuid().ToString("N")[..8]}"));
        try
        {
            Directory.CreateDirectory(server.ModelsDirectory);
            writeModels(server.ModelsDirectory);
            ServeOptions options = new ServeOptions
            {
                ModelsDirectory = server.ModelsDirectory,
                DataDirectory = Path.Combine(server.Root, "data"),
                Role = embeddingSilos > 0 ? SiloRole.Frontend : SiloRole.All,
                Port = 0,
                SiloPort = LoopbackPorts.Free(),
                GatewayPort = LoopbackPorts.Free(),
                ClusterId = $"{name}-tests-{Guid.NewGuid().ToString("N")[..6]}",
                WriteDemoModelWhenEmpty = false,
                Deadline = TimeSpan.FromSeconds(30),
            };
            options = configure?.Invoke(options) ?? options;
            server.Server = await RecsysServer.StartAsync(options, TextWriter.Null, loadModels: embeddingSilos == 0);
            for (int i = 1; i <= embeddingSilos; i++)
            {
                server._embeddingSilos.Add(await RecsysServer.StartAsync(options with
                {
                    Role = SiloRole.Embedding,
                    DataDirectory = Path.Combine(server.Root, $"data-embedding-{i}"),
                    SiloPort = LoopbackPorts.Free(),
                    GatewayPort = LoopbackPorts.Free(),
                    PrimarySilo = new IPEndPoint(IPAddress.Loopback, options.SiloPort),
                }, TextWriter.Null, loadModels: false));
            }
            if (embeddingSilos > 0) await server.Server.LoadModelsAsync();
            server.Http = new HttpClient { BaseAddress = server.Server.Address, Timeout = httpTimeout ?? TimeSpan.FromSeconds(60) };
            return server;
        }
        catch
        {
            // The fixture never holds a server whose start threw, so nobody else would stop what did start.
            await server.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        for (int i = _embeddingSilos.Count - 1; i >= 0; i--) await _embeddingSilos[i].DisposeAsync();
        if (Server is not null) await Server.DisposeAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // FASTER may still hold a log file handle for a moment; the temp folder is harmless.
        }
    }
}
