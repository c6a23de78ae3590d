using System.Net;
using System.Text.Json.Nodes;
using Recsys.OnnxModels.Vision;
using static Recsys.Router.Tests.VisionServer;

namespace Recsys.Router.Tests;

/// <summary>Every vision fixture served over HTTP answers what PyTorch answered, through KServe infer and the convenience endpoints.</summary>
[Collection(VisionServerCollection.Name)]
public sealed class VisionApiTests(VisionServer server)
{
    private HttpClient Http => server.Http;

    public static TheoryData<string> Models => [.. VisionModels];

    [Theory]
    [MemberData(nameof(Models))]
    public async Task Kserve_infer_equals_pytorch_for_every_case(string name)
    {
        foreach (Case c in Cases(name))
        {
            var (status, body, _) = await HttpHelpers.PostJsonAsync(Http, $"/v2/models/{name}/infer", KServeBody(c.Inputs));
            Assert.True(status == HttpStatusCode.OK, $"{name}/{c.Name}: {status} {body?.ToJsonString()}");
            Assert.Equal(name, body!["model_name"]!.GetValue<string>());
            Assert.Equal("t1", body["id"]!.GetValue<string>());
            JsonArray outputs = body["outputs"]!.AsArray();
            Assert.Equal(c.Outputs.Count, outputs.Count);
            foreach ((string output, HostTensor expected) in c.Outputs)
            {
                JsonNode got = outputs.Single(o => o!["name"]!.GetValue<string>() == output)!;
                Assert.Equal(expected.Shape, got["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
                if (expected.Element == ElementKind.Int64)
                {
                    Assert.Equal("INT64", got["datatype"]!.GetValue<string>());
                    Assert.Equal(expected.Longs, got["data"]!.AsArray().Select(x => x!.GetValue<long>()));
                }
                else
                {
                    Assert.Equal("FP32", got["datatype"]!.GetValue<string>());
                    AssertClose(expected.Floats, Floats(got["data"]!), output == "boxes" ? 1e-3 : 1e-4, $"{name}/{c.Name}/{output}");
                }
            }
        }
    }

    [Fact]
    public async Task Metadata_comes_from_the_graph()
    {
        JsonNode resnext = JsonNode.Parse(await Http.GetStringAsync("/v2/models/resnext"))!;
        Assert.Equal("classification", resnext["kind"]!.GetValue<string>());
        JsonNode input = resnext["inputs"]![0]!;
        Assert.Equal(("image", "FP32"), (input["name"]!.GetValue<string>(), input["datatype"]!.GetValue<string>()));
        Assert.Equal([-1L, 3, 64, 64], input["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
        JsonNode detector = JsonNode.Parse(await Http.GetStringAsync("/v2/models/detector"))!;
        Assert.Equal(["boxes", "labels", "scores"], detector["outputs"]!.AsArray().Select(o => o!["name"]!.GetValue<string>()));
        JsonNode frames = JsonNode.Parse(await Http.GetStringAsync("/v2/models/video-frames"))!;
        Assert.Equal([-1L, 3, -1, 64, 64], frames["inputs"]![0]!["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
        JsonNode list = JsonNode.Parse(await Http.GetStringAsync("/v1/models"))!;
        Assert.Equal(["detector", "dot", "resnext", "video-frames", "video3d"], list["models"]!.AsArray().Select(m => m!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Kserve_outputs_filter_returns_only_the_named_outputs()
    {
        Case c = Cases("detector")[1];
        var (status, body, _) = await HttpHelpers.PostJsonAsync(Http, "/v2/models/detector/infer", KServeBody(c.Inputs, outputs: "[{\"name\":\"scores\"}]"));
        Assert.Equal(HttpStatusCode.OK, status);
        JsonNode only = Assert.Single(body!["outputs"]!.AsArray())!;
        Assert.Equal("scores", only["name"]!.GetValue<string>());
        AssertClose(c.Outputs["scores"].Floats, Floats(only["data"]!), 1e-4, "scores");
    }

    [Theory]
    [InlineData("resnext", "classify", "tensor", 3)]
    [InlineData("video3d", "classify-video", "clip", 2)]
    [InlineData("video-frames", "classify-video", "clip", 4)]
    public async Task Convenience_classification_returns_pytorchs_top_k(string name, string endpoint, string key, int k)
    {
        string[] labels = File.Exists(Path.Combine(FixtureRoot, name, "1", "labels.txt"))
            ? File.ReadAllLines(Path.Combine(FixtureRoot, name, "1", "labels.txt"))
            : File.ReadAllLines(Path.Combine(FixtureRoot, "resnext", "1", "labels.txt"));
        foreach (Case c in Cases(name))
        {
            HostTensor input = c.Inputs.Values.Single();
            var (status, body, _) = await HttpHelpers.PostJsonAsync(Http, $"/v1/models/{name}/{endpoint}", $"{{\"{key}\": {NestedData(input)}, \"top_k\": {k}}}");
            Assert.True(status == HttpStatusCode.OK, $"{name}/{c.Name}: {status} {body?.ToJsonString()}");
            float[] probs = c.Outputs["probs"].Floats;
            int classes = (int)c.Outputs["probs"].Shape[1];
            JsonArray predictions = body!["predictions"]!.AsArray();
            Assert.Equal(c.Outputs["probs"].Shape[0], predictions.Count);
            for (int r = 0; r < predictions.Count; r++)
            {
                int[] expected = [.. Enumerable.Range(0, classes).OrderByDescending(i => probs[r * classes + i]).Take(k)];
                JsonArray row = predictions[r]!.AsArray();
                Assert.Equal(expected, row.Select(p => p!["index"]!.GetValue<int>()));
                Assert.Equal(expected.Select(i => labels[i]), row.Select(p => p!["label"]!.GetValue<string>()));
                AssertClose([.. expected.Select(i => probs[r * classes + i])], [.. row.Select(p => p!["score"]!.GetValue<float>())], 1e-4, $"{name}/{c.Name} row {r}");
            }
        }
    }

    [Fact]
    public async Task Classify_png_as_raw_body_and_as_base64_matches_the_scripts_preprocessing()
    {
        JsonNode reference = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureRoot, "resnext", "preprocess.json")))!;
        float[] probs = Tensor(reference["probs"]!).Floats;
        byte[] png = File.ReadAllBytes(Path.Combine(FixtureRoot, "resnext", "test.png"));
        int[] expected = [.. Enumerable.Range(0, probs.Length).OrderByDescending(i => probs[i]).Take(3)];

        var (status, raw, _) = await HttpHelpers.PostAsync(Http, "/v1/models/resnext/classify?top_k=3", png, "image/png");
        Assert.True(status == HttpStatusCode.OK, raw?.ToJsonString());
        var (status2, json, _) = await HttpHelpers.PostJsonAsync(Http, "/v1/models/resnext/classify", $"{{\"image\": \"{Convert.ToBase64String(png)}\", \"top_k\": 3}}");
        Assert.Equal(HttpStatusCode.OK, status2);
        foreach (JsonNode body in new[] { raw!, json! })
        {
            JsonArray row = Assert.Single(body["predictions"]!.AsArray())!.AsArray();
            Assert.Equal(expected, row.Select(p => p!["index"]!.GetValue<int>()));
            // The 8-bit resize may differ from PyTorch's by one step per pixel (see OnnxModels tests).
            AssertClose([.. expected.Select(i => probs[i])], [.. row.Select(p => p!["score"]!.GetValue<float>())], 2e-3, "probs of test.png");
        }
    }

    [Fact]
    public async Task Detect_returns_pytorchs_boxes_labels_and_scores_per_image()
    {
        IReadOnlyList<Case> cases = Cases("detector");
        string[] labels = File.ReadAllLines(Path.Combine(FixtureRoot, "detector", "1", "labels.txt"));
        // Two images in one request, [2, 3, 128, 128]: each gets its own list.
        HostTensor both = HostTensor.Concat([.. cases.Take(2).Select(c => Unsqueezed(c.Inputs["image"]))]);
        var (status, body, _) = await HttpHelpers.PostJsonAsync(Http, "/v1/models/detector/detect", $"{{\"tensor\": {NestedData(both)}}}");
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        JsonArray perImage = body!["detections"]!.AsArray();
        Assert.Equal(2, perImage.Count);
        for (int i = 0; i < 2; i++)
        {
            JsonArray found = perImage[i]!.AsArray();
            Assert.Equal(cases[i].Outputs["scores"].Length, found.Count);
            Assert.Equal(cases[i].Outputs["labels"].Longs, found.Select(d => d!["class"]!.GetValue<long>()));
            Assert.Equal(cases[i].Outputs["labels"].Longs.Select(l => labels[l]), found.Select(d => d!["label"]!.GetValue<string>()));
            AssertClose(cases[i].Outputs["scores"].Floats, [.. found.Select(d => d!["score"]!.GetValue<float>())], 1e-4, $"image {i} scores");
            AssertClose(cases[i].Outputs["boxes"].Floats, [.. found.SelectMany(d => d!["box"]!.AsArray().Select(x => x!.GetValue<float>()))], 1e-3, $"image {i} boxes");
        }
    }

    [Fact]
    public async Task Ranking_is_served_by_the_same_front_end()
    {
        var (status, body, _) = await HttpHelpers.PostJsonAsync(Http, "/v1/models/dot/rank", HttpHelpers.Request("dot"));
        Assert.Equal(HttpStatusCode.OK, status);
        HttpHelpers.AssertClose(HttpHelpers.Expected("dot"), HttpHelpers.Flatten(body!["scores"]!), 1e-5f);
    }

    private static HostTensor Unsqueezed(HostTensor t) => HostTensor.Of(t.Floats, [1, .. t.Shape]);
}

/// <summary>Concurrent requests share the model's queue (and may share a batch); each still gets its own rows.</summary>
[Collection(VisionServerCollection.Name)]
public sealed class VisionConcurrencyTests(VisionServer server)
{
    [Theory]
    [InlineData("resnext")]
    [InlineData("video3d")]
    [InlineData("detector")]
    public async Task Concurrent_requests_each_get_their_own_answer(string name)
    {
        IReadOnlyList<Case> cases = Cases(name);
        string[] bodies = [.. cases.Select(c => KServeBody(c.Inputs))];
        Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)>[] calls =
            [.. Enumerable.Range(0, 24).Select(i => HttpHelpers.PostJsonAsync(server.Http, $"/v2/models/{name}/infer", bodies[i % bodies.Length]))];
        await Task.WhenAll(calls);
        for (int i = 0; i < calls.Length; i++)
        {
            var (status, body, _) = calls[i].Result;
            Assert.Equal(HttpStatusCode.OK, status);
            Case c = cases[i % cases.Count];
            foreach ((string output, HostTensor expected) in c.Outputs)
            {
                JsonNode got = body!["outputs"]!.AsArray().Single(o => o!["name"]!.GetValue<string>() == output)!;
                if (expected.Element == ElementKind.Int64) Assert.Equal(expected.Longs, got["data"]!.AsArray().Select(x => x!.GetValue<long>()));
                else AssertClose(expected.Floats, Floats(got["data"]!), output == "boxes" ? 1e-3 : 1e-4, $"request {i} ({c.Name}) {output}");
            }
        }
    }

    [Fact]
    public async Task A_request_out_of_time_gets_504_and_the_next_is_served()
    {
        Case c = Cases("resnext")[0];
        var (status, error, _) = await HttpHelpers.PostJsonAsync(server.Http, "/v2/models/resnext/infer", KServeBody(c.Inputs), new Dictionary<string, string> { ["X-Deadline-Ms"] = "0" });
        Assert.Equal(HttpStatusCode.GatewayTimeout, status);
        Assert.Equal("deadline", error!["field"]!.GetValue<string>());
        var (ok, body, _) = await HttpHelpers.PostJsonAsync(server.Http, "/v2/models/resnext/infer", KServeBody(c.Inputs));
        Assert.Equal(HttpStatusCode.OK, ok);
        AssertClose(c.Outputs["probs"].Floats, Floats(body!["outputs"]![0]!["data"]!), 1e-4, "probs");
    }
}
