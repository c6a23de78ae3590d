using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

/// <summary>
/// Every kind of bad request gets its status and a JSON error naming the field, and the server
/// keeps serving: each case is followed by a good request that must still score correctly.
/// </summary>
[Collection(RouterClusterCollection.Name)]
public sealed class BadInputTests(RouterCluster cluster)
{
    private const string Good = "\"C1\": [[1]], \"C2\": [[2]], \"C3\": [[3]]";

    public static TheoryData<string, string, string, int, string> JsonCases => new()
    {
        // path, content type, body, status, field
        { "/v1/models/dot/rank", "application/json", $"{{\"dense\": [[1, 2]], \"sparse\": {{{Good}}}}}", 400, "dense[0]" },
        { "/v1/models/dot/rank", "application/json", "{\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {\"C1\": [[1], [2]], \"C2\": [[2]], \"C3\": [[3]]}}", 400, "sparse.C1" },
        { "/v1/models/dot/rank", "application/json", "{\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {\"C1\": [[1]], \"C2\": [[2]]}}", 400, "sparse.C3" },
        { "/v1/models/dot/rank", "application/json", $"{{\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {{{Good}, \"C9\": [[1]]}}}}", 400, "sparse.C9" },
        { "/v1/models/dot/rank", "application/json", $"{{\"dense\": [[1, 1e999, 3, 4, 5]], \"sparse\": {{{Good}}}}}", 400, "dense[0][1]" },
        { "/v1/models/dot/rank", "application/json", "{\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {\"C1\": [[20]], \"C2\": [[2]], \"C3\": [[3]]}}", 422, "sparse.C1[0][0]" },
        { "/v1/models/dot/rank", "application/json", "{\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {\"C1\": [[1]], \"C2\": [[2, -1]], \"C3\": [[3]]}}", 422, "sparse.C2[0][1]" },
        { "/v1/models/dot/rank", "application/json", "{\"dense\": [[1, 2,", 400, "body" },
        { "/v1/models/dot/rank", "application/json", "{\"dense\": [], \"sparse\": {\"C1\": [], \"C2\": [], \"C3\": []}}", 400, "dense" },
        { "/v1/models/dot/rank", "text/plain", $"{{\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {{{Good}}}}}", 415, "Content-Type" },
        { "/v1/models/nope/rank", "application/json", $"{{\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {{{Good}}}}}", 404, "name" },
        { "/v1/models/dot/rank", "application/json", $"{{\"version\": \"9\", \"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {{{Good}}}}}", 404, "version" },
        { "/v1/models/dot/rank", "application/json", "{\"context\": {\"sparse\": {\"C1\": [1]}}, \"candidates\": {\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {\"C1\": [[1]], \"C2\": [[2]], \"C3\": [[3]]}}}", 400, "candidates.sparse.C1" },
        { "/v1/models/dot/rank", "application/json", "{\"context\": {\"dense\": [1, 2], \"sparse\": {\"C1\": [99]}}, \"candidates\": {\"dense\": [[3, 4, 5]], \"sparse\": {\"C2\": [[2]], \"C3\": [[3]]}}}", 422, "context.sparse.C1[0]" },
        { "/v2/models/dot/infer", "application/json", "{\"inputs\": [{\"name\": \"dense\", \"datatype\": \"FP64\", \"shape\": [1, 5], \"data\": [1, 2, 3, 4, 5]}]}", 400, "inputs[dense].datatype" },
        { "/v2/models/dot/infer", "application/json", "{\"inputs\": [{\"name\": \"dense\", \"datatype\": \"FP32\", \"shape\": [1, 5], \"data\": [1, 2, 3, 4, 5]}, {\"name\": \"C1.indices\", \"datatype\": \"INT64\", \"shape\": [1], \"data\": [1]}, {\"name\": \"C1.offsets\", \"datatype\": \"INT64\", \"shape\": [3], \"data\": [0, 1, 1]}]}", 400, "inputs[C1.offsets].shape" },
        { "/v2/models/dot/infer", "application/json", "{\"inputs\": [{\"name\": \"dense\", \"datatype\": \"FP32\", \"shape\": [1, 5], \"data\": [1, 2, 3, 4, 5]}]}", 400, "inputs[C1.indices]" },
    };

    [Theory]
    [MemberData(nameof(JsonCases))]
    public async Task Bad_json_requests_name_the_field_and_the_server_keeps_serving(string path, string contentType, string body, int status, string field)
    {
        var (actual, error, _) = await PostAsync(cluster.Http, path, Encoding.UTF8.GetBytes(body), contentType);

        AssertError(status, field, actual, error);
        await AssertStillServing();
    }

    [Fact]
    public async Task Bodies_over_the_limit_get_413()
    {
        var sb = new StringBuilder("{\"dense\": [");
        while (sb.Length < RouterCluster.MaxBodyBytes + 10) sb.Append("[1, 2, 3, 4, 5], ");
        sb.Append("[1, 2, 3, 4, 5]], \"sparse\": {}}");

        var (actual, error, _) = await PostJsonAsync(cluster.Http, "/v1/models/dot/rank", sb.ToString());

        AssertError(413, "body", actual, error);
        await AssertStillServing();
    }

    [Fact]
    public async Task Bad_messagepack_bodies_name_the_field()
    {
        byte[] nan = ToMessagePack(JsonNode.Parse($"{{\"dense\": [[1.5, 2.5, 3.5, 4.5, 5.5]], \"sparse\": {{{Good}}}}}")!);
        // 1.5 is float64 0x3FF8000000000000: patch the first value's eight bytes into a NaN.
        int at = IndexOf(nan, [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        nan[at + 1] = 0x7f;
        nan[at + 2] = 0xf8;
        byte[] outOfRange = ToMessagePack(JsonNode.Parse("{\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {\"C1\": [[1]], \"C2\": [[2]], \"C3\": [[50]]}}")!);
        byte[] notAMap = ToMessagePack(JsonNode.Parse("[1, 2]")!);
        byte[] truncated = ToMessagePack(JsonNode.Parse($"{{\"dense\": [[1, 2, 3, 4, 5]], \"sparse\": {{{Good}}}}}")!)[..20];

        var cases = new (byte[] Body, int Status, string Field)[]
        {
            (nan, 400, "dense[0][0]"),
            (outOfRange, 422, "sparse.C3[0][0]"),
            (notAMap, 400, "body"),
            (truncated, 400, "body"),
            ([0xc1], 400, "body"),
        };
        foreach (var (body, status, field) in cases)
        {
            var (actual, error, _) = await PostAsync(cluster.Http, "/v1/models/dot/rank", body, "application/x-msgpack");
            AssertError(status, field, actual, error);
        }
        await AssertStillServing();
    }

    [Fact]
    public async Task A_request_past_its_deadline_gets_504()
    {
        var (actual, error, _) = await PostJsonAsync(cluster.Http, "/v1/models/dot/rank", Request("dot"), new Dictionary<string, string> { ["X-Deadline-Ms"] = "0" });

        AssertError(504, "deadline", actual, error);
        await AssertStillServing();
    }

    private static void AssertError(int status, string field, HttpStatusCode actual, JsonNode? error)
    {
        Assert.Equal(status, (int)actual);
        Assert.NotNull(error);
        Assert.Equal(field, error["field"]!.GetValue<string>());
        Assert.StartsWith(field + ":", error["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    private async Task AssertStillServing()
    {
        var (status, body, _) = await PostJsonAsync(cluster.Http, "/v1/models/dot/rank", Request("dot"));
        Assert.Equal(HttpStatusCode.OK, status);
        AssertClose(Expected("dot"), Flatten(body!["scores"]!), 2e-5f);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        }
        throw new InvalidOperationException("pattern not found");
    }
}
