using System.Net;
using System.Text.Json.Nodes;
using Recsys.Router.Hosting;

namespace Recsys.Router.Tests;

/// <summary>A server with an admin key serving resnext, the seq2seq toy and the "dot" DLRM.</summary>
public sealed class ProfileServer : IAsyncLifetime
{
    public const string ApiKey = "profile-admin-key";

    private TestServer _server = null!;

    public RecsysServer Server => _server.Server;
    public HttpClient Http => _server.Http;

    public async Task InitializeAsync() =>
        _server = await TestServer.StartAsync("profile", models =>
        {
            TestModels.Copy(Path.Combine(VisionServer.FixtureRoot, "resnext", "1"), Path.Combine(models, "resnext", "1"));
            TestModels.Copy(TranslationServer.FixtureDirectory, Path.Combine(models, "toy", "1"));
            TestModels.Copy(RouterCluster.FixtureDirectory("dot"), Path.Combine(models, "dot", "1"), "model.json", "weights.safetensors");
        }, options => options with { ApiKey = ApiKey }, httpTimeout: TimeSpan.FromSeconds(300));

    public async Task<(HttpStatusCode Status, JsonNode? Body)> GetAsync(string path, string? key = ApiKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (key is not null) request.Headers.Add("X-Api-Key", key);
        using HttpResponseMessage response = await Http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}

/// <summary>
/// GET /v1/models/{name}/profile on a running server: parameter counts against the models' own
/// sizes (the fixtures' layer shapes; ONNX initializer sums from the onnx package), the per-kind
/// breakdown against the measured pass (within 10% in a server, see <see cref="AssertBreakdownSumsToPass"/>), and the admin key, unknown model and bad batch list refused.
/// </summary>
public class ProfileEndpointTests(ProfileServer server) : IClassFixture<ProfileServer>
{
    [Fact]
    public async Task Onnx_profile_counts_the_graphs_parameters_and_its_breakdown_sums_to_the_pass()
    {
        (HttpStatusCode status, JsonNode? body) = await server.GetAsync("/v1/models/resnext/profile?batch=1,32");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("classification", body!["kind"]!.GetValue<string>());
        Assert.Equal(88074, body["parameters"]!["dense_parameters"]!.GetValue<long>());
        Assert.Equal(0, body["parameters"]!["embedding_parameters"]!.GetValue<long>());
        JsonArray batches = body["batches"]!.AsArray();
        Assert.Equal([1, 32], batches.Select(b => b!["batch"]!.GetValue<int>()));
        // At batch 32 the kernels dwarf the profiler's per-node cost, which the breakdown leaves unattributed.
        JsonNode batch32 = batches[1]!;
        Assert.Contains(batch32["operators"]!.AsArray(), o => o!["cost"]!["kind"]!.GetValue<string>() == "grouped_conv");
        AssertBreakdownSumsToPass(batch32);
    }

    [Fact]
    public async Task Dlrm_profile_counts_the_served_models_parameters()
    {
        (HttpStatusCode status, JsonNode? body) = await server.GetAsync("/v1/models/dot/profile?batch=4");
        Assert.Equal(HttpStatusCode.OK, status);
        // dot: bottom 5-8-4, tables 20/30/50 rows x 4, dot interaction of 4 vectors -> 4 + 6 pairs = 10, top 10-8-1.
        Assert.Equal(5 * 8 + 8 + 8 * 4 + 4 + 10 * 8 + 8 + 8 * 1 + 1, body!["parameters"]!["dense_parameters"]!.GetValue<long>());
        Assert.Equal((20 + 30 + 50) * 4, body["parameters"]!["embedding_parameters"]!.GetValue<long>());
        JsonNode batch = body["batches"]![0]!;
        // 2 bottom layers, 3 bags, the interaction, 2 top layers.
        Assert.Equal(8, batch["operators"]!.AsArray().Count);
        JsonNode latency = batch["latency"]!;
        double attributed = batch["breakdown"]!.AsArray().Sum(k => k!["mean_ns"]!.GetValue<double>());
        Assert.Equal(latency["mean_ns"]!.GetValue<double>(), attributed + latency["unattributed_ns"]!.GetValue<double>(), 3);
    }

    [Fact]
    public async Task Seq2seq_profile_splits_the_embeddings_from_the_dense_weights()
    {
        (HttpStatusCode status, JsonNode? body) = await server.GetAsync("/v1/models/toy/profile");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2 * 214 * 32, body!["parameters"]!["embedding_parameters"]!.GetValue<long>());
        Assert.Equal(29824 + 51926 - 2 * 214 * 32, body["parameters"]!["dense_parameters"]!.GetValue<long>());
        Assert.Equal([1], body["batches"]!.AsArray().Select(b => b!["batch"]!.GetValue<int>()));
        Assert.Contains("24 steps", body["workload"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/v1/models/resnext/profile", null, HttpStatusCode.Unauthorized, "X-Api-Key")]
    [InlineData("/v1/models/resnext/profile", "wrong", HttpStatusCode.Unauthorized, "X-Api-Key")]
    [InlineData("/v1/models/nope/profile", ProfileServer.ApiKey, HttpStatusCode.NotFound, "name")]
    [InlineData("/v1/models/resnext/profile?batch=0", ProfileServer.ApiKey, HttpStatusCode.BadRequest, "batch")]
    [InlineData("/v1/models/resnext/profile?batch=1,x", ProfileServer.ApiKey, HttpStatusCode.BadRequest, "batch")]
    [InlineData("/v1/models/resnext/profile?batch=4,4", ProfileServer.ApiKey, HttpStatusCode.BadRequest, "batch")]
    [InlineData("/v1/models/resnext/profile?batch=1,2,4,8,16", ProfileServer.ApiKey, HttpStatusCode.BadRequest, "batch")]
    [InlineData("/v1/models/resnext/profile?batch=100000", ProfileServer.ApiKey, HttpStatusCode.BadRequest, "batch")]
    public async Task Bad_requests_are_refused_naming_the_field(string path, string? key, HttpStatusCode expected, string field)
    {
        (HttpStatusCode status, JsonNode? body) = await server.GetAsync(path, key);
        Assert.Equal(expected, status);
        Assert.Equal(field, body!["field"]!.GetValue<string>());
    }

    /// <summary>
    /// Within 10%, not the 5% CharacterizationOnnxTests holds the profiler to outside a server: in the
    /// server process, with its silo and Kestrel threads on the same 2 cores, 7-8% of a profiled resnext
    /// pass at batch 8-32 fell between kernels on the loaded machine (ONNX Runtime's run setup and
    /// profiler bookkeeping plus waits for a core), and the endpoint's capped 5-50 passes average it less.
    /// </summary>
    private static void AssertBreakdownSumsToPass(JsonNode batch)
    {
        double mean = batch["latency"]!["mean_ns"]!.GetValue<double>();
        double kinds = batch["breakdown"]!.AsArray().Sum(k => k!["mean_ns"]!.GetValue<double>());
        Assert.True(kinds <= mean * 1.0001 && kinds >= 0.90 * mean, $"kinds sum to {kinds:F0} ns, the measured pass is {mean:F0} ns");
    }
}
