using System.Net;
using System.Text.Json.Nodes;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

/// <summary>Served greedy and beam-search translations equal the PyTorch reference decodes token for token, alone and under concurrency.</summary>
[Collection(TranslationServerCollection.Name)]
public sealed class TranslationApiTests(TranslationServer server)
{
    private const double ScoreTolerance = 1e-3;
    private const string Path = "/v1/models/toy/translate";

    public static TheoryData<int, bool> Cases
    {
        get
        {
            var data = new TheoryData<int, bool>();
            for (int i = 0; i < 10; i++)
            {
                data.Add(i, true);
                data.Add(i, false);
            }
            return data;
        }
    }

    private static string Body(JsonNode c, bool asText)
    {
        var body = new JsonObject
        {
            ["beam"] = c["beam"]!.GetValue<int>(),
            ["max_length"] = c["max_length"]!.GetValue<int>(),
            ["n_best"] = c["n_best"]!.GetValue<int>(),
            ["length_penalty"] = c["length_penalty"]!.GetValue<double>(),
        };
        if (asText) body["text"] = c["text"]!.GetValue<string>();
        else body["ids"] = c["source"]!.DeepClone();
        return body.ToJsonString();
    }

    private static void AssertMatches(JsonNode expected, JsonNode? answer)
    {
        Assert.NotNull(answer);
        Assert.Equal(expected["source"]!.ToJsonString(), answer["source_ids"]!.ToJsonString());
        JsonArray want = expected["hypotheses"]!.AsArray(), got = answer["translations"]!.AsArray();
        Assert.Equal(want.Count, got.Count);
        for (int i = 0; i < want.Count; i++)
        {
            Assert.Equal(want[i]!["ids"]!.ToJsonString(), got[i]!["ids"]!.ToJsonString());
            Assert.Equal(expected["texts"]![i]!.GetValue<string>(), got[i]!["text"]!.GetValue<string>());
            Assert.Equal(want[i]!["finished"]!.GetValue<bool>(), got[i]!["finished"]!.GetValue<bool>());
            Assert.True(Math.Abs(want[i]!["score"]!.GetValue<double>() - got[i]!["score"]!.GetValue<double>()) <= ScoreTolerance, $"hypothesis {i} score");
            Assert.True(Math.Abs(want[i]!["log_prob"]!.GetValue<double>() - got[i]!["log_prob"]!.GetValue<double>()) <= ScoreTolerance, $"hypothesis {i} log_prob");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Served_translation_equals_the_pytorch_reference(int index, bool asText)
    {
        JsonNode c = server.Cases[index]!;

        var (status, answer, _) = await PostJsonAsync(server.Http, Path, Body(c, asText));

        Assert.Equal(HttpStatusCode.OK, status);
        AssertMatches(c, answer);
        Assert.Equal("toy", answer!["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task Concurrent_requests_of_different_lengths_all_equal_their_references()
    {
        // Three rounds of every case at once: long and short, greedy and beam, share decoder steps.
        var calls = Enumerable.Range(0, 30).Select(async k =>
        {
            JsonNode c = server.Cases[k % 10]!;
            var (status, answer, _) = await PostJsonAsync(server.Http, Path, Body(c, asText: k % 2 == 0));
            return (c, status, answer);
        }).ToList();

        foreach (var (c, status, answer) in await Task.WhenAll(calls))
        {
            Assert.Equal(HttpStatusCode.OK, status);
            AssertMatches(c, answer);
        }
    }

    [Fact]
    public async Task Defaults_come_from_model_json()
    {
        JsonNode c = server.Cases.First(x => x!["beam"]!.GetValue<int>() == 4 && x["length_penalty"]!.GetValue<double>() == 0.6)!;

        var (status, answer, _) = await PostJsonAsync(server.Http, Path, new JsonObject { ["ids"] = c["source"]!.DeepClone() }.ToJsonString());

        Assert.Equal(HttpStatusCode.OK, status);
        JsonArray got = answer!["translations"]!.AsArray();
        Assert.Single(got);
        Assert.Equal(c["hypotheses"]![0]!["ids"]!.ToJsonString(), got[0]!["ids"]!.ToJsonString());
    }

    [Fact]
    public async Task Metadata_describes_the_encoder_and_the_model_is_listed()
    {
        JsonNode metadata = JsonNode.Parse(await server.Http.GetStringAsync("/v2/models/toy"))!;
        JsonNode list = JsonNode.Parse(await server.Http.GetStringAsync("/v1/models"))!;

        Assert.Equal("seq2seq", metadata["kind"]!.GetValue<string>());
        Assert.Equal("onnxruntime_onnx", metadata["platform"]!.GetValue<string>());
        JsonNode ids = metadata["inputs"]!.AsArray().Single(t => t!["name"]!.GetValue<string>() == "src_ids")!;
        Assert.Equal("INT64", ids["datatype"]!.GetValue<string>());
        Assert.Equal("[-1,-1]", ids["shape"]!.ToJsonString());
        JsonNode encOut = metadata["outputs"]!.AsArray().Single(t => t!["name"]!.GetValue<string>() == "enc_out")!;
        Assert.Equal("[-1,-1,64]", encOut["shape"]!.ToJsonString());
        Assert.Contains(list["models"]!.AsArray(), m => m!["name"]!.GetValue<string>() == "toy" && m["kind"]!.GetValue<string>() == "seq2seq");
    }

    [Fact]
    public async Task Infer_runs_the_encoder_on_a_padded_batch_and_equals_pytorch()
    {
        JsonNode reference = server.Reference["encoder"]!;
        const string body = """
            {"id": "e1", "inputs": [
              {"name": "src_ids", "datatype": "INT64", "shape": [2, 4], "data": [[5, 6, 7, 8], [9, 10, 0, 0]]},
              {"name": "src_lengths", "datatype": "INT64", "shape": [2], "data": [4, 2]}]}
            """;

        var (status, answer, _) = await PostJsonAsync(server.Http, "/v2/models/toy/infer", body);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("e1", answer!["id"]!.GetValue<string>());
        JsonArray outputs = answer["outputs"]!.AsArray();
        JsonNode encOut = outputs.Single(o => o!["name"]!.GetValue<string>() == "enc_out")!;
        JsonNode state = outputs.Single(o => o!["name"]!.GetValue<string>() == "state")!;
        Assert.Equal("[2,4,64]", encOut["shape"]!.ToJsonString());
        Assert.Equal("[2,64]", state["shape"]!.ToJsonString());
        float[] firstRow = [.. encOut["data"]!.AsArray().Take(4 * 64).Select(x => x!.GetValue<float>())];
        AssertClose(Floats(reference["enc_out_first_row"]!), firstRow, 1e-4f);
        AssertClose(Floats(reference["state"]!), [.. state["data"]!.AsArray().Select(x => x!.GetValue<float>())], 1e-4f);
    }

    private static float[] Floats(JsonNode node) => [.. node.AsArray().Select(x => x!.GetValue<float>())];
}
