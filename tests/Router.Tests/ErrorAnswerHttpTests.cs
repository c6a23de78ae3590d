using System.Net;
using System.Text.Json.Nodes;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

/// <summary>
/// Over real HTTP, each endpoint family answers through the shared error mapping: a bad
/// X-Deadline-Ms header is a 400 naming it, a request out of time a 504 that closes its connection,
/// and the next good request is still answered correctly.
/// </summary>
internal static class ErrorAnswers
{
    public static async Task AssertDeadlineAnswersAsync(HttpClient http, string path, string body, Func<Task> stillServes)
    {
        var (status, error, _) = await PostJsonAsync(http, path, body, new Dictionary<string, string> { ["X-Deadline-Ms"] = "soon" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("X-Deadline-Ms", error!["field"]!.GetValue<string>());
        await stillServes();

        (status, error, HttpResponseMessage response) = await PostJsonAsync(http, path, body, new Dictionary<string, string> { ["X-Deadline-Ms"] = "0" });
        Assert.Equal(HttpStatusCode.GatewayTimeout, status);
        Assert.Equal("deadline", error!["field"]!.GetValue<string>());
        Assert.Equal(504, error["status"]!.GetValue<int>());
        Assert.Equal("deadline: not answered within 0 ms; the request was dropped", error["error"]!.GetValue<string>());
        Assert.True(response.Headers.ConnectionClose, "a 504 must close the connection: the deadline may have cut the body read short");
        await stillServes();
    }
}

[Collection(RouterClusterCollection.Name)]
public sealed class RankingErrorAnswerTests(RouterCluster cluster)
{
    [Fact]
    public Task Ranking_answers_deadline_failures_and_keeps_serving() =>
        ErrorAnswers.AssertDeadlineAnswersAsync(cluster.Http, "/v1/models/dot/rank", Request("dot"), async () =>
        {
            var (status, body, _) = await PostJsonAsync(cluster.Http, "/v1/models/dot/rank", Request("dot"));
            Assert.Equal(HttpStatusCode.OK, status);
            AssertClose(Expected("dot"), Flatten(body!["scores"]!), 2e-5f);
        });
}

[Collection(VisionServerCollection.Name)]
public sealed class VisionErrorAnswerTests(VisionServer server)
{
    [Fact]
    public Task Vision_answers_deadline_failures_and_keeps_serving()
    {
        VisionServer.Case resnext = VisionServer.Cases("resnext")[0];
        string good = VisionServer.KServeBody(resnext.Inputs);
        return ErrorAnswers.AssertDeadlineAnswersAsync(server.Http, "/v2/models/resnext/infer", good, async () =>
        {
            var (status, body, _) = await PostJsonAsync(server.Http, "/v2/models/resnext/infer", good);
            Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
            VisionServer.AssertClose(resnext.Outputs["probs"].Floats, VisionServer.Floats(body!["outputs"]![0]!["data"]!), 1e-4, "resnext after a failed request");
        });
    }
}

[Collection(TranslationServerCollection.Name)]
public sealed class TranslationErrorAnswerTests(TranslationServer server)
{
    [Fact]
    public Task Translation_answers_deadline_failures_and_keeps_serving()
    {
        JsonNode c = server.Cases[0]!;
        string request = new JsonObject { ["ids"] = c["source"]!.DeepClone(), ["beam"] = c["beam"]!.GetValue<int>() }.ToJsonString();
        return ErrorAnswers.AssertDeadlineAnswersAsync(server.Http, "/v1/models/toy/translate", request, server.AssertStillTranslatingAsync);
    }
}
