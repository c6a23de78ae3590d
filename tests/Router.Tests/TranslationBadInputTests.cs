using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

/// <summary>Every bad translation request gets a 4xx naming the field, and the next good request still translates correctly.</summary>
[Collection(TranslationServerCollection.Name)]
public sealed class TranslationBadInputTests(TranslationServer server)
{
    public static TheoryData<string, string, string, int, string> Cases => new()
    {
        // path, content type, body, status, field
        { "/v1/models/toy/translate", "application/json", "{\"text\": \"\"}", 400, "text" },
        { "/v1/models/toy/translate", "application/json", "{\"text\": \"   \"}", 400, "text" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": []}", 400, "ids" },
        { "/v1/models/toy/translate", "application/json", "{}", 400, "text" },
        { "/v1/models/toy/translate", "application/json", "{\"text\": \"bala\", \"ids\": [4]}", 400, "ids" },
        { "/v1/models/toy/translate", "application/json", $"{{\"text\": \"{string.Join(' ', Enumerable.Repeat("bala", 33))}\"}}", 422, "text" },
        { "/v1/models/toy/translate", "application/json", $"{{\"ids\": [{string.Join(", ", Enumerable.Repeat(4, 33))}]}}", 422, "ids" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4, 214, 5]}", 422, "ids[1]" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4, -3]}", 422, "ids[1]" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4, 99999999999]}", 422, "ids[1]" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4, 1.5]}", 400, "ids[1]" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4], \"beam\": 0}", 400, "beam" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4], \"beam\": 17}", 400, "beam" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4], \"beam\": 1000000000000}", 400, "beam" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4], \"beam\": 2, \"n_best\": 3}", 400, "n_best" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4], \"max_length\": 25}", 400, "max_length" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4], \"max_length\": 0}", 400, "max_length" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4], \"length_penalty\": -1}", 400, "length_penalty" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4], \"beam\": \"4\"}", 400, "beam" },
        { "/v1/models/toy/translate", "application/json", "{\"ids\": [4], \"temperature\": 1}", 400, "temperature" },
        { "/v1/models/toy/translate", "application/json", "{\"text\": 5}", 400, "text" },
        { "/v1/models/toy/translate", "application/json", "{\"text\": \"bala", 400, "body" },
        { "/v1/models/toy/translate", "application/json", "[1, 2]", 400, "body" },
        { "/v1/models/toy/translate", "text/plain", "{\"text\": \"bala\"}", 415, "Content-Type" },
        { "/v1/models/nope/translate", "application/json", "{\"text\": \"bala\"}", 404, "name" },
        { "/v2/models/toy/infer", "application/json", "{\"inputs\": [{\"name\": \"src_ids\", \"datatype\": \"FP32\", \"shape\": [1, 1], \"data\": [4]}]}", 400, "inputs[src_ids].datatype" },
        { "/v2/models/toy/infer", "application/json", "{\"inputs\": [{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [1, 2], \"data\": [4]}, {\"name\": \"src_lengths\", \"datatype\": \"INT64\", \"shape\": [1], \"data\": [1]}]}", 400, "inputs[src_ids].data" },
        { "/v2/models/toy/infer", "application/json", "{\"inputs\": [{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [1, 2], \"data\": [4, 500]}, {\"name\": \"src_lengths\", \"datatype\": \"INT64\", \"shape\": [1], \"data\": [2]}]}", 422, "inputs[src_ids].data[1]" },
        { "/v2/models/toy/infer", "application/json", "{\"inputs\": [{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [1, 2], \"data\": [4, 5]}, {\"name\": \"src_lengths\", \"datatype\": \"INT64\", \"shape\": [1], \"data\": [3]}]}", 400, "inputs[src_lengths].data[0]" },
        { "/v2/models/toy/infer", "application/json", "{\"inputs\": [{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [1, 2], \"data\": [4, 5]}]}", 400, "inputs" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Bad_requests_name_the_field_and_the_server_keeps_translating(string path, string contentType, string body, int status, string field)
    {
        var (actual, error, _) = await PostAsync(server.Http, path, Encoding.UTF8.GetBytes(body), contentType);

        Assert.Equal(status, (int)actual);
        Assert.NotNull(error);
        Assert.Equal(field, error["field"]!.GetValue<string>());
        Assert.StartsWith(field + ":", error["error"]!.GetValue<string>(), StringComparison.Ordinal);
        await server.AssertStillTranslatingAsync();
    }

    [Fact]
    public async Task A_body_over_the_limit_gets_413()
    {
        string body = $"{{\"text\": \"{string.Join(' ', Enumerable.Repeat("bala", (int)(TranslationServer.MaxBodyBytes / 5) + 10))}\"}}";

        var (actual, error, _) = await PostJsonAsync(server.Http, "/v1/models/toy/translate", body);

        Assert.Equal(413, (int)actual);
        Assert.Equal("body", error!["field"]!.GetValue<string>());
        await server.AssertStillTranslatingAsync();
    }

    [Fact]
    public async Task A_deadline_too_short_gets_504_and_the_server_keeps_translating()
    {
        JsonNode c = server.Cases.First(x => x!["hypotheses"]![0]!["ids"]!.AsArray().Count == 24)!;
        string body = new JsonObject { ["ids"] = c["source"]!.DeepClone(), ["beam"] = 16, ["n_best"] = 1 }.ToJsonString();

        var (actual, error, _) = await PostJsonAsync(server.Http, "/v1/models/toy/translate", body, new Dictionary<string, string> { ["X-Deadline-Ms"] = "0" });

        Assert.Equal(504, (int)actual);
        Assert.Equal("deadline", error!["field"]!.GetValue<string>());
        await server.AssertStillTranslatingAsync();
    }
}

/// <summary>
/// The encoder's KServe /infer goes through the shared tensor reader: wrong datatypes, shapes and
/// missing or unknown tensors get a 4xx naming the field (and the missing input), and the encoder
/// keeps answering.
/// </summary>
[Collection(TranslationServerCollection.Name)]
public sealed class TranslationEncoderInferBadInputTests(TranslationServer server)
{
    private const string Path = "/v2/models/toy/infer";
    private const string Lengths = "{\"name\": \"src_lengths\", \"datatype\": \"INT64\", \"shape\": [1], \"data\": [2]}";
    private const string Ids = "{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [1, 2], \"data\": [4, 5]}";

    private static string Body(params string[] tensors) => $"{{\"inputs\": [{string.Join(", ", tensors)}]}}";

    public static TheoryData<string, int, string, string> Cases => new()
    {
        // body, status, field, a word the message must hold
        { Body(Ids, "{\"name\": \"src_lengths\", \"datatype\": \"FP32\", \"shape\": [1], \"data\": [2]}"), 400, "inputs[src_lengths].datatype", "INT64" },
        { Body(Ids, "{\"name\": \"src_lengths\", \"datatype\": \"INT32\", \"shape\": [1], \"data\": [2]}"), 400, "inputs[src_lengths].datatype", "INT64" },
        { Body("{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [2], \"data\": [4, 5]}", Lengths), 400, "inputs[src_ids].shape", "rank 2" },
        { Body("{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [1, 1, 2], \"data\": [4, 5]}", Lengths), 400, "inputs[src_ids].shape", "rank 2" },
        { Body(Ids, "{\"name\": \"src_lengths\", \"datatype\": \"INT64\", \"shape\": [1, 1], \"data\": [2]}"), 400, "inputs[src_lengths].shape", "rank 1" },
        { Body(Ids, "{\"name\": \"src_lengths\", \"datatype\": \"INT64\", \"shape\": [2], \"data\": [2, 2]}"), 400, "inputs[src_lengths].shape", "batch 1" },
        { Body("{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [1, 0], \"data\": []}", Lengths), 400, "inputs[src_ids].shape[1]", "positive" },
        { Body("{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [1, 33], \"data\": [" + string.Join(", ", Enumerable.Repeat(4, 33)) + "]}", Lengths), 422, "inputs[src_ids].shape", "max_source_length" },
        { Body("{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [257, 1], \"data\": [" + string.Join(", ", Enumerable.Repeat(4, 257)) + "]}", "{\"name\": \"src_lengths\", \"datatype\": \"INT64\", \"shape\": [257], \"data\": [" + string.Join(", ", Enumerable.Repeat(1, 257)) + "]}"), 400, "inputs[src_ids].shape", "256" },
        { Body("{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [1, 2], \"data\": [4, 5.5]}", Lengths), 400, "inputs[src_ids].data[1]", "integer" },
        { Body("{\"name\": \"src_ids\", \"datatype\": \"INT64\", \"shape\": [2, 2], \"data\": [[4, 5], [6]]}", Lengths), 400, "inputs[src_ids].data", "ragged" },
        { Body(Lengths), 400, "inputs", "src_ids" },
        { Body(Ids), 400, "inputs", "src_lengths" },
        { Body(), 400, "inputs", "src_ids" },
        { Body(Ids, Lengths, "{\"name\": \"src_mask\", \"datatype\": \"FP32\", \"shape\": [1, 2], \"data\": [1, 1]}"), 400, "inputs[2].name", "src_mask" },
        { Body(Ids, Ids, Lengths), 400, "inputs[src_ids].name", "twice" },
        { "{\"inputs\": [" + Ids + ", " + Lengths + "], \"outputs\": [{\"name\": \"log_probs\"}]}", 400, "outputs[0].name", "log_probs" },
        { "{\"inputs\": {\"src_ids\": [4, 5]}}", 400, "inputs", "src_ids" },
        { "{\"id\": 5, \"inputs\": [" + Ids + ", " + Lengths + "]}", 400, "id", "string" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Bad_encoder_tensors_name_the_field_and_the_encoder_keeps_answering(string body, int status, string field, string word)
    {
        var (actual, error, _) = await PostJsonAsync(server.Http, Path, body);

        Assert.Equal(status, (int)actual);
        Assert.NotNull(error);
        Assert.Equal(field, error["field"]!.GetValue<string>());
        Assert.StartsWith(field + ":", error["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains(word, error["error"]!.GetValue<string>(), StringComparison.Ordinal);
        await AssertEncoderAnswers();
    }

    [Fact]
    public async Task Outputs_asked_for_by_name_are_the_only_ones_returned()
    {
        var (status, answer, _) = await PostJsonAsync(server.Http, Path, "{\"inputs\": [" + Ids + ", " + Lengths + "], \"outputs\": [{\"name\": \"state\"}]}");

        Assert.Equal(HttpStatusCode.OK, status);
        JsonNode only = Assert.Single(answer!["outputs"]!.AsArray())!;
        Assert.Equal("state", only["name"]!.GetValue<string>());
        Assert.Equal("FP32", only["datatype"]!.GetValue<string>());
        Assert.Equal("[1,64]", only["shape"]!.ToJsonString());
    }

    private async Task AssertEncoderAnswers()
    {
        JsonNode reference = server.Reference["encoder"]!;
        const string body = """
            {"inputs": [
              {"name": "src_ids", "datatype": "INT64", "shape": [2, 4], "data": [5, 6, 7, 8, 9, 10, 0, 0]},
              {"name": "src_lengths", "datatype": "INT64", "shape": [2], "data": [4, 2]}]}
            """;
        var (status, answer, _) = await PostJsonAsync(server.Http, Path, body);
        Assert.Equal(HttpStatusCode.OK, status);
        JsonNode state = answer!["outputs"]!.AsArray().Single(o => o!["name"]!.GetValue<string>() == "state")!;
        float[] want = [.. reference["state"]!.AsArray().Select(x => x!.GetValue<float>())];
        float[] got = [.. state["data"]!.AsArray().Select(x => x!.GetValue<float>())];
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(want[i] - got[i]) <= 1e-4f, $"state[{i}]: {got[i]} vs {want[i]}");
    }
}
