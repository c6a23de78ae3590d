using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Recsys.Router.Hosting;

namespace Recsys.Router.Tests;

/// <summary>
/// A single-node server (silo + HTTP) whose repository holds the seq2seq fixture as model "toy",
/// with its PyTorch reference decodes. Shared by the translation tests.
/// </summary>
public sealed class TranslationServer : IAsyncLifetime
{
    public const string Model = "toy";
    public const long MaxBodyBytes = 64 * 1024;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "recsys-translation-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public RecsysServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public JsonNode Reference { get; private set; } = null!;
    public JsonArray Cases => Reference["cases"]!.AsArray();

    public static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq", "toy", "1");

    public async Task InitializeAsync()
    {
        string target = Path.Combine(_root, "models", Model, "1");
        Directory.CreateDirectory(target);
        foreach (string f in Directory.GetFiles(FixtureDirectory)) File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
        Reference = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, "reference.json")))!;
        Server = await RecsysServer.StartAsync(new ServeOptions
        {
            ModelsDirectory = Path.Combine(_root, "models"),
            DataDirectory = Path.Combine(_root, "data"),
            Port = 0,
            SiloPort = FreePort(),
            GatewayPort = FreePort(),
            ClusterId = "translation-tests-" + Guid.NewGuid().ToString("N")[..6],
            MaxBodyBytes = MaxBodyBytes,
            WriteDemoModelWhenEmpty = false,
            Deadline = TimeSpan.FromSeconds(30),
        }, TextWriter.Null);
        Http = new HttpClient { BaseAddress = Server.Address, Timeout = TimeSpan.FromSeconds(60) };
    }

    public async Task DisposeAsync()
    {
        Http?.Dispose();
        if (Server is not null) await Server.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A store may still hold a file for a moment; the temp folder is harmless.
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
public sealed class TranslationServerCollection : ICollectionFixture<TranslationServer>
{
    public const string Name = "translation server";
}
