using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Recsys.Router.Hosting;

namespace Recsys.Router.Tests;

/// <summary>
/// A single-node server (silo + HTTP) whose repository holds the seq2seq fixture as model "toy",
/// with its PyTorch reference decodes, and the same graphs with the SentencePiece unigram model
/// of tests/fixtures/seq2seq/sentencepiece as model "toy-sp". Shared by the translation tests.
/// </summary>
public sealed class TranslationServer : IAsyncLifetime
{
    public const string Model = "toy";
    public const string SentencePieceModel = "toy-sp";
    public const long MaxBodyBytes = 64 * 1024;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "recsys-translation-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public RecsysServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public JsonNode Reference { get; private set; } = null!;
    public JsonArray Cases => Reference["cases"]!.AsArray();

    public static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq", "toy", "1");

    public static string SentencePieceDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq", "sentencepiece");

    /// <summary>golden.json of the SentencePiece fixture: the Python library's encodings and the toy model's reference translations of them.</summary>
    public JsonNode SentencePieceGolden { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        string target = Path.Combine(_root, "models", Model, "1");
        Directory.CreateDirectory(target);
        foreach (string f in Directory.GetFiles(FixtureDirectory)) File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
        Reference = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, "reference.json")))!;
        WriteSentencePieceModel(Path.Combine(_root, "models", SentencePieceModel, "1"));
        SentencePieceGolden = JsonNode.Parse(File.ReadAllText(Path.Combine(SentencePieceDirectory, "golden.json")))!;
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

    /// <summary>The toy graphs with the unigram SentencePiece model in place of vocab.txt (same size, same special ids).</summary>
    private static void WriteSentencePieceModel(string target)
    {
        Directory.CreateDirectory(target);
        foreach (string f in new[] { "encoder.onnx", "decoder.onnx" }) File.Copy(Path.Combine(FixtureDirectory, f), Path.Combine(target, f));
        File.Copy(Path.Combine(SentencePieceDirectory, "unigram.model"), Path.Combine(target, "sp.model"));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, "model.json")))!.AsObject();
        json.Remove("vocab");
        json["sentencepiece"] = "sp.model";
        File.WriteAllText(Path.Combine(target, "model.json"), json.ToJsonString());
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
