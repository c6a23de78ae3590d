using System.Net;
using Microsoft.Extensions.DependencyInjection;
using System.Text.Json.Nodes;
using Recsys.Cli.Commands;
using Recsys.DenseCompute.Dlrm;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Repository;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

[Collection(RouterClusterCollection.Name)]
public sealed class RankingApiTests(RouterCluster cluster)
{
    // Shard partials are added in another order than one in-process bag sum: float32 rounding only.
    private const float SameModelTolerance = 2e-6f;
    private const float PyTorchTolerance = 2e-5f;

    public static TheoryData<string> Fixtures => new(RouterCluster.Models.Select(m => m.Fixture));

    [Theory]
    [MemberData(nameof(Fixtures))]
    public async Task Json_scores_equal_recsys_rank_and_the_pytorch_fixture(string fixture)
    {
        var (status, body, _) = await PostJsonAsync(cluster.Http, $"/v1/models/{fixture}/rank", Request(fixture));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(fixture, body!["model"]!.GetValue<string>());
        Assert.Equal("1", body["version"]!.GetValue<string>());
        float[] served = Flatten(body["scores"]!);
        AssertClose(RecsysRank(fixture), served, SameModelTolerance);
        AssertClose(Expected(fixture), served, PyTorchTolerance);
    }

    [Fact]
    public async Task Multi_event_models_answer_a_list_per_sample()
    {
        var (status, body, _) = await PostJsonAsync(cluster.Http, "/v1/models/multi-event/rank", Request("multi-event"));

        Assert.Equal(HttpStatusCode.OK, status);
        JsonArray scores = body!["scores"]!.AsArray();
        Assert.Equal(7, scores.Count);
        Assert.All(scores, s => Assert.Equal(3, s!.AsArray().Count));
    }

    [Theory]
    [InlineData("dot")]
    [InlineData("weighted")]
    public async Task MessagePack_body_scores_equal_the_json_body(string fixture)
    {
        byte[] body = ToMessagePack(JsonNode.Parse(Request(fixture))!);

        var (jsonStatus, json, _) = await PostAsync(cluster.Http, $"/v1/models/{fixture}/rank", body, "application/x-msgpack");
        var (packStatus, _, packed) = await PostAsync(cluster.Http, $"/v1/models/{fixture}/rank", body, "application/x-msgpack", accept: "application/x-msgpack");

        Assert.Equal(HttpStatusCode.OK, jsonStatus);
        Assert.Equal(HttpStatusCode.OK, packStatus);
        Assert.Equal("application/x-msgpack", packed.Content.Headers.ContentType!.MediaType);
        var (model, version, scores) = ReadMessagePackScores(await packed.Content.ReadAsByteArrayAsync());
        Assert.Equal(fixture, model);
        Assert.Equal("1", version);
        AssertClose(Expected(fixture), Flatten(json!["scores"]!), PyTorchTolerance);
        AssertClose(Expected(fixture), scores, PyTorchTolerance);
    }

    [Fact]
    public async Task Concurrent_requests_batched_together_score_as_when_sent_alone()
    {
        string request = Request("dot");
        float[] expected = Expected("dot");

        var answers = await Task.WhenAll(Enumerable.Range(0, 24).Select(_ => PostJsonAsync(cluster.Http, "/v1/models/dot/rank", request)));

        foreach (var (status, body, _) in answers)
        {
            Assert.Equal(HttpStatusCode.OK, status);
            AssertClose(expected, Flatten(body!["scores"]!), PyTorchTolerance);
        }
    }

    [Fact]
    public async Task Context_and_candidates_score_as_the_expanded_request()
    {
        (JsonObject expanded, JsonObject contextForm) = ContextFormOfDot();

        var (fullStatus, fullBody, _) = await PostJsonAsync(cluster.Http, "/v1/models/dot/rank", expanded.ToJsonString());
        var (ctxStatus, ctxBody, _) = await PostJsonAsync(cluster.Http, "/v1/models/dot/rank", contextForm.ToJsonString());

        Assert.Equal(HttpStatusCode.OK, fullStatus);
        Assert.Equal(HttpStatusCode.OK, ctxStatus);
        float[] fromFull = Flatten(fullBody!["scores"]!);
        AssertClose(fromFull, Flatten(ctxBody!["scores"]!), SameModelTolerance);
        AssertClose(ScoreInProcess("dot", expanded.ToJsonString()), fromFull, SameModelTolerance);
    }

    [Fact]
    public async Task MessagePack_context_and_candidates_score_as_the_expanded_request()
    {
        (JsonObject expanded, JsonObject contextForm) = ContextFormOfDot();
        contextForm["version"] = 1;

        var (fullStatus, _, full) = await PostAsync(cluster.Http, "/v1/models/dot/rank", ToMessagePack(expanded), "application/x-msgpack", accept: "application/x-msgpack");
        var (ctxStatus, _, ctx) = await PostAsync(cluster.Http, "/v1/models/dot/rank", ToMessagePack(contextForm), "application/x-msgpack", accept: "application/x-msgpack");

        Assert.Equal(HttpStatusCode.OK, fullStatus);
        Assert.Equal(HttpStatusCode.OK, ctxStatus);
        float[] fromFull = ReadMessagePackScores(await full.Content.ReadAsByteArrayAsync()).Scores;
        var (model, version, fromContext) = ReadMessagePackScores(await ctx.Content.ReadAsByteArrayAsync());
        Assert.Equal(("dot", "1"), (model, version));
        Assert.Equal(expanded["dense"]!.AsArray().Count, fromContext.Length);
        AssertClose(fromFull, fromContext, SameModelTolerance);
        AssertClose(ScoreInProcess("dot", expanded.ToJsonString()), fromContext, SameModelTolerance);
    }

    public static TheoryData<string, int, string> BadMessagePackContextForms => new()
    {
        // JSON written as MessagePack by the test: body, status, field the error must name
        { "{\"context\": {\"sparse\": {\"C1\": [1]}}, \"candidates\": {\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {\"C1\": [[1]], \"C2\": [[2]], \"C3\": [[3]]}}}", 400, "candidates.sparse.C1" },
        { "{\"context\": {\"dense\": [1, 2], \"sparse\": {\"C1\": [99]}}, \"candidates\": {\"dense\": [[3, 4, 5]], \"sparse\": {\"C2\": [[2]], \"C3\": [[3]]}}}", 422, "context.sparse.C1[0]" },
        { "{\"context\": {\"dense\": [1, 2], \"sparse\": {\"C1\": [1]}}, \"candidates\": {\"dense\": [[3, 4]], \"sparse\": {\"C2\": [[2]], \"C3\": [[3]]}}}", 400, "candidates.dense[0]" },
        { "{\"context\": {\"dense\": [1, 2], \"sparse\": {\"C1\": [1]}}, \"candidates\": {\"dense\": [[3, 4, 5], [3, 4, 5]], \"sparse\": {\"C2\": [[2]], \"C3\": [[3], [4]]}}}", 400, "candidates.sparse.C2" },
        { "{\"context\": {\"dense\": [1, 2], \"sparse\": {\"C1\": [1, \"x\"]}}, \"candidates\": {\"dense\": [[3, 4, 5]], \"sparse\": {\"C2\": [[2]], \"C3\": [[3]]}}}", 400, "context.sparse.C1[1]" },
        { "{\"context\": {\"dense\": [1, 2], \"sparse\": {\"C1\": [1]}}, \"candidates\": {\"dense\": [[3, 4, 5]], \"sparse\": {\"C2\": [[2]], \"C3\": [[3]], \"C7\": [[3]]}}}", 400, "candidates.sparse.C7" },
        { "{\"context\": {\"dense\": [1, 2], \"sparse\": {\"C1\": [1]}, \"extra\": 1}, \"candidates\": {\"dense\": [[3, 4, 5]], \"sparse\": {\"C2\": [[2]], \"C3\": [[3]]}}}", 400, "context.extra" },
        { "{\"context\": [1], \"candidates\": {\"dense\": [[3, 4, 5]]}}", 400, "context" },
    };

    [Theory]
    [MemberData(nameof(BadMessagePackContextForms))]
    public async Task Bad_messagepack_context_forms_name_the_field_and_the_server_keeps_serving(string json, int status, string field)
    {
        var (actual, error, _) = await PostAsync(cluster.Http, "/v1/models/dot/rank", ToMessagePack(JsonNode.Parse(json)!), "application/x-msgpack");

        Assert.Equal(status, (int)actual);
        Assert.Equal(field, error!["field"]!.GetValue<string>());
        Assert.StartsWith(field + ":", error["error"]!.GetValue<string>(), StringComparison.Ordinal);
        var (okStatus, body, _) = await PostJsonAsync(cluster.Http, "/v1/models/dot/rank", Request("dot"));
        Assert.Equal(HttpStatusCode.OK, okStatus);
        AssertClose(Expected("dot"), Flatten(body!["scores"]!), PyTorchTolerance);
    }

    [Fact]
    public async Task A_messagepack_context_form_with_a_nan_names_the_value()
    {
        byte[] body = ToMessagePack(JsonNode.Parse("{\"context\": {\"dense\": [1.5, 2], \"sparse\": {\"C1\": [1]}}, \"candidates\": {\"dense\": [[3, 4, 5]], \"sparse\": {\"C2\": [[2]], \"C3\": [[3]]}}}")!);
        // 1.5 is float64 0x3FF8000000000000: patch its bytes into a NaN.
        int at = body.AsSpan().IndexOf((ReadOnlySpan<byte>)[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        body[at + 1] = 0x7f;

        var (actual, error, _) = await PostAsync(cluster.Http, "/v1/models/dot/rank", body, "application/x-msgpack");

        Assert.Equal(400, (int)actual);
        Assert.Equal("context.dense[0]", error!["field"]!.GetValue<string>());
    }

    /// <summary>The dot fixture's request, and the same samples as one context (dense 0-1, table C1) and candidates.</summary>
    private static (JsonObject Expanded, JsonObject ContextForm) ContextFormOfDot()
    {
        // The user side (dense features 0-1, table C1) is shared; candidates differ in the rest.
        JsonNode full = JsonNode.Parse(Request("dot"))!;
        JsonArray dense = full["dense"]!.AsArray(), c2 = full["sparse"]!["C2"]!.AsArray(), c3 = full["sparse"]!["C3"]!.AsArray();
        int n = dense.Count;
        var contextDense = new JsonArray(dense[0]![0]!.DeepClone(), dense[0]![1]!.DeepClone());
        var contextIds = new JsonArray(3, 7, 7, 19);
        var expanded = new JsonObject
        {
            ["dense"] = new JsonArray(Enumerable.Range(0, n).Select(i =>
                (JsonNode)new JsonArray(new[] { contextDense[0]!.DeepClone(), contextDense[1]!.DeepClone() }.Concat(dense[i]!.AsArray().Skip(2).Select(x => x!.DeepClone())).ToArray())).ToArray()),
            ["sparse"] = new JsonObject
            {
                ["C1"] = new JsonArray(Enumerable.Range(0, n).Select(_ => (JsonNode)contextIds.DeepClone()).ToArray()),
                ["C2"] = c2.DeepClone(),
                ["C3"] = c3.DeepClone(),
            },
        };
        var contextForm = new JsonObject
        {
            ["context"] = new JsonObject { ["dense"] = contextDense.DeepClone(), ["sparse"] = new JsonObject { ["C1"] = contextIds.DeepClone() } },
            ["candidates"] = new JsonObject
            {
                ["dense"] = new JsonArray(Enumerable.Range(0, n).Select(i => (JsonNode)new JsonArray(dense[i]!.AsArray().Skip(2).Select(x => x!.DeepClone()).ToArray())).ToArray()),
                ["sparse"] = new JsonObject { ["C2"] = c2.DeepClone(), ["C3"] = c3.DeepClone() },
            },
        };
        return (expanded, contextForm);
    }

    [Fact]
    public async Task Kserve_v2_infer_scores_equal_the_fixture()
    {
        JsonNode request = JsonNode.Parse(Request("multi-event"))!;
        var inputs = new JsonArray();
        JsonArray dense = request["dense"]!.AsArray();
        inputs.Add(new JsonObject
        {
            ["name"] = "dense",
            ["datatype"] = "FP32",
            ["shape"] = new JsonArray(dense.Count, dense[0]!.AsArray().Count),
            ["data"] = dense.DeepClone(), // nested form; the protocol also allows flat
        });
        foreach (var (table, bags) in request["sparse"]!.AsObject())
        {
            var ids = new JsonArray();
            var offsets = new JsonArray(0);
            foreach (JsonNode? bag in bags!.AsArray())
            {
                foreach (JsonNode? id in bag!.AsArray()) ids.Add(id!.DeepClone());
                offsets.Add(ids.Count);
            }
            inputs.Add(new JsonObject { ["name"] = $"{table}.indices", ["datatype"] = "INT64", ["shape"] = new JsonArray(ids.Count), ["data"] = ids });
            inputs.Add(new JsonObject { ["name"] = $"{table}.offsets", ["datatype"] = "INT64", ["shape"] = new JsonArray(offsets.Count), ["data"] = offsets });
        }
        var body = new JsonObject { ["id"] = "req-1", ["inputs"] = inputs };

        var (status, answer, _) = await PostJsonAsync(cluster.Http, "/v2/models/multi-event/infer", body.ToJsonString());

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("multi-event", answer!["model_name"]!.GetValue<string>());
        Assert.Equal("req-1", answer["id"]!.GetValue<string>());
        JsonNode output = answer["outputs"]![0]!;
        Assert.Equal("scores", output["name"]!.GetValue<string>());
        Assert.Equal("FP32", output["datatype"]!.GetValue<string>());
        Assert.Equal([7, 3], output["shape"]!.AsArray().Select(x => x!.GetValue<int>()));
        AssertClose(Expected("multi-event"), output["data"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray(), PyTorchTolerance);
    }

    [Fact]
    public async Task Kserve_v2_health_and_metadata_describe_the_served_models()
    {
        Assert.Equal(HttpStatusCode.OK, (await cluster.Http.GetAsync("/v2/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await cluster.Http.GetAsync("/v2/health/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await cluster.Http.GetAsync("/v2/models/dot/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await cluster.Http.GetAsync("/v2/models/nope/ready")).StatusCode);

        JsonNode meta = JsonNode.Parse(await cluster.Http.GetStringAsync("/v2/models/dot"))!;

        Assert.Equal("dot", meta["name"]!.GetValue<string>());
        string[] names = meta["inputs"]!.AsArray().Select(i => i!["name"]!.GetValue<string>()).ToArray();
        Assert.Equal(["dense", "C1.indices", "C1.offsets", "C2.indices", "C2.offsets", "C3.indices", "C3.offsets"], names);
        Assert.Equal([-1, 5], meta["inputs"]![0]!["shape"]!.AsArray().Select(x => x!.GetValue<int>()));
    }

    [Fact]
    public async Task Metrics_count_requests_stages_batches_and_shard_traffic()
    {
        await PostJsonAsync(cluster.Http, "/v1/models/cat/rank", Request("cat"));
        await PostJsonAsync(cluster.Http, "/v1/models/cat/rank", "{\"dense\": [[1, 2]]}");

        string text = await cluster.Http.GetStringAsync("/metrics");

        Assert.Matches("recsys_requests_total\\{model=\"cat\",status=\"200\"\\} [1-9]", text);
        Assert.Matches("recsys_requests_total\\{model=\"cat\",status=\"400\"\\} [1-9]", text);
        foreach (string stage in new[] { "queue", "lookup", "dense", "total" })
        {
            Assert.Matches($"recsys_stage_seconds_count\\{{model=\"cat\",stage=\"{stage}\"\\}} [1-9]", text);
        }
        Assert.Matches("recsys_batch_samples_count\\{model=\"cat\"\\} [1-9]", text);
        // cat has 2 + 1 + 3 shards: a 7-sample request touches each shard holding any of its ids.
        Assert.Matches("recsys_shard_calls_total\\{model=\"cat\"\\} [1-9]", text);
        Assert.Matches("recsys_lookup_bytes_received_total\\{model=\"cat\"\\} [1-9]", text);
        Assert.Matches("recsys_shard_cache_hit_ratio\\{model=\"cat\",version=\"1\"\\} ", text);
    }

    [Fact]
    public async Task Shards_live_only_on_the_embedding_silos()
    {
        ModelRegistry registry = cluster.Primary.Registry!;
        ServedModel dot = await registry.AcquireAsync("dot", null);
        try
        {
            ShardStatus[] statuses = await Task.WhenAll(dot.AllShards.Select(s => s.GetStatus()));
            Assert.Equal(20 + 30 + 50, statuses.Sum(s => s.Rows));
            string frontEnd = SiloOf(cluster.Primary), second = SiloOf(cluster.Secondary), third = SiloOf(cluster.Third);
            Assert.All(statuses, s => Assert.Contains(s.Silo, new[] { second, third }));
            Assert.DoesNotContain(statuses, s => s.Silo == frontEnd);
            var management = cluster.Primary.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
            Assert.Equal(3, (await management.GetHosts(onlyActive: true)).Count);
        }
        finally
        {
            dot.Release();
        }
    }

    private static string SiloOf(Hosting.RecsysServer server) => server.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress.ToString();

    /// <summary>What `recsys rank` prints for the same model and request.</summary>
    private float[] RecsysRank(string fixture)
    {
        string input = Path.Combine(cluster.ModelsDirectory, fixture, "1", "sample-request.json");
        var output = new StringWriter();
        int code = RankCommand.Run(["--models", cluster.ModelsDirectory, "--model", fixture, "--version", "1", "--input", input], TextReader.Null, output);
        Assert.Equal(0, code);
        return Flatten(JsonNode.Parse(output.ToString())!["scores"]!);
    }

    private float[] ScoreInProcess(string fixture, string json)
    {
        using DlrmModel model = DlrmModel.Load(Path.Combine(cluster.ModelsDirectory, fixture, "1"));
        return model.Score(new RankRequestJson(model.Spec).Parse(System.Text.Encoding.UTF8.GetBytes(json)));
    }
}
