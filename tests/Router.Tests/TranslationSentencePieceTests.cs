using System.Net;
using System.Text.Json.Nodes;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

/// <summary>
/// /translate with {"text": ...} on a model whose tokenizer is a SentencePiece model trained by the
/// Python sentencepiece library: the served source ids are that library's encoding, and the
/// translations equal the PyTorch reference decodes of those ids, their text that library's decoding.
/// </summary>
[Collection(TranslationServerCollection.Name)]
public sealed class TranslationSentencePieceTests(TranslationServer server)
{
    private const double ScoreTolerance = 1e-3;
    private const string Path = "/v1/models/" + TranslationServer.SentencePieceModel + "/translate";
    private const int MaxSourceLength = 32;

    private static readonly JsonNode Golden = JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(TranslationServer.SentencePieceDirectory, "golden.json")))!;

    /// <summary>Every golden unigram sentence short enough for the toy model's max_source_length.</summary>
    public static TheoryData<int> Sentences
    {
        get
        {
            var data = new TheoryData<int>();
            JsonArray encode = Golden["unigram"]!["encode"]!.AsArray();
            for (int i = 0; i < encode.Count; i++)
            {
                if (encode[i]!["ids"]!.AsArray().Count <= MaxSourceLength) data.Add(i);
            }
            return data;
        }
    }

    public static TheoryData<int> Translations
    {
        get
        {
            var data = new TheoryData<int>();
            for (int i = 0; i < Golden["translations"]!.AsArray().Count; i++) data.Add(i);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Sentences))]
    public async Task Served_source_ids_are_the_python_sentencepiece_encoding(int index)
    {
        JsonNode c = Golden["unigram"]!["encode"]![index]!;
        string body = new JsonObject { ["text"] = c["text"]!.GetValue<string>(), ["beam"] = 1, ["max_length"] = 1 }.ToJsonString();

        var (status, answer, _) = await PostJsonAsync(server.Http, Path, body);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(c["ids"]!.ToJsonString(), answer!["source_ids"]!.ToJsonString());
    }

    [Theory]
    [MemberData(nameof(Translations))]
    public async Task Served_translation_of_text_equals_the_reference_and_decodes_as_python_does(int index)
    {
        JsonNode c = Golden["translations"]![index]!;
        string body = new JsonObject
        {
            ["text"] = c["text"]!.GetValue<string>(),
            ["beam"] = c["beam"]!.GetValue<int>(),
            ["max_length"] = c["max_length"]!.GetValue<int>(),
            ["n_best"] = c["n_best"]!.GetValue<int>(),
            ["length_penalty"] = c["length_penalty"]!.GetValue<double>(),
        }.ToJsonString();

        var (status, answer, _) = await PostJsonAsync(server.Http, Path, body);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(c["source"]!.ToJsonString(), answer!["source_ids"]!.ToJsonString());
        JsonArray want = c["hypotheses"]!.AsArray(), got = answer["translations"]!.AsArray();
        Assert.Equal(want.Count, got.Count);
        for (int i = 0; i < want.Count; i++)
        {
            Assert.Equal(want[i]!["ids"]!.ToJsonString(), got[i]!["ids"]!.ToJsonString());
            Assert.Equal(c["texts"]![i]!.GetValue<string>(), got[i]!["text"]!.GetValue<string>());
            Assert.True(Math.Abs(want[i]!["score"]!.GetValue<double>() - got[i]!["score"]!.GetValue<double>()) <= ScoreTolerance, $"hypothesis {i} score");
        }
    }
}
