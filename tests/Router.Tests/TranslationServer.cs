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

    private TestServer _server = null!;

    public RecsysServer Server => _server.Server;
    public HttpClient Http => _server.Http;
    public JsonNode Reference { get; private set; } = null!;
    public JsonArray Cases => Reference["cases"]!.AsArray();

    public static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq", "toy", "1");

    public static string SentencePieceDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq", "sentencepiece");

    /// <summary>golden.json of the SentencePiece fixture: the Python library's encodings and the toy model's reference translations of them.</summary>
    public JsonNode SentencePieceGolden { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Reference = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, "reference.json")))!;
        SentencePieceGolden = JsonNode.Parse(File.ReadAllText(Path.Combine(SentencePieceDirectory, "golden.json")))!;
        _server = await TestServer.StartAsync("translation", models =>
        {
            TestModels.Copy(FixtureDirectory, Path.Combine(models, Model, "1"));
            WriteSentencePieceModel(Path.Combine(models, SentencePieceModel, "1"));
        }, options => options with { MaxBodyBytes = MaxBodyBytes });
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }

    /// <summary>A good request after a failed one: the server still translates, and exactly as PyTorch does.</summary>
    public async Task AssertStillTranslatingAsync()
    {
        JsonNode c = Cases[1]!;
        string body = new JsonObject
        {
            ["text"] = c["text"]!.GetValue<string>(),
            ["beam"] = c["beam"]!.GetValue<int>(),
            ["n_best"] = c["n_best"]!.GetValue<int>(),
            ["length_penalty"] = c["length_penalty"]!.GetValue<double>(),
        }.ToJsonString();
        var (status, answer, _) = await HttpHelpers.PostJsonAsync(Http, "/v1/models/toy/translate", body);
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        Assert.Equal(c["hypotheses"]![0]!["ids"]!.ToJsonString(), answer!["translations"]![0]!["ids"]!.ToJsonString());
    }

    /// <summary>The toy graphs with the unigram SentencePiece model in place of vocab.txt (same size, same special ids).</summary>
    private static void WriteSentencePieceModel(string target)
    {
        TestModels.Copy(FixtureDirectory, target, "encoder.onnx", "decoder.onnx");
        File.Copy(Path.Combine(SentencePieceDirectory, "unigram.model"), Path.Combine(target, "sp.model"));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, "model.json")))!.AsObject();
        json.Remove("vocab");
        json["sentencepiece"] = "sp.model";
        File.WriteAllText(Path.Combine(target, "model.json"), json.ToJsonString());
    }
}

[CollectionDefinition(Name)]
public sealed class TranslationServerCollection : ICollectionFixture<TranslationServer>
{
    public const string Name = "translation server";
}
