using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Recsys.OnnxModels.Vision;
using SkiaSharp;
using static Recsys.Router.Tests.VisionServer;

namespace Recsys.Router.Tests;

/// <summary>Bad vision requests get a clear 4xx naming the field, and the next good request still succeeds.</summary>
[Collection(VisionServerCollection.Name)]
public sealed class VisionBadInputTests(VisionServer server)
{
    private HttpClient Http => server.Http;

    private static readonly Case Resnext = Cases("resnext")[0];

    private static string Good => KServeBody(Resnext.Inputs);

    public static TheoryData<string, string, HttpStatusCode, string> KServeCases => new()
    {
        { "resnext", KServeBody(Resnext.Inputs, shape: "[1,3,64,32]"), HttpStatusCode.BadRequest, "inputs[image].data" },
        { "resnext", KServeBody(new Dictionary<string, HostTensor> { ["image"] = HostTensor.Of(new float[3 * 32 * 32], 1, 3, 32, 32) }), HttpStatusCode.BadRequest, "inputs[image].shape" },
        { "resnext", KServeBody(new Dictionary<string, HostTensor> { ["image"] = HostTensor.Of(new float[3 * 64 * 64], 3, 64, 64) }), HttpStatusCode.BadRequest, "inputs[image].shape" },
        { "resnext", KServeBody(Resnext.Inputs, datatype: "INT64"), HttpStatusCode.BadRequest, "inputs[image].datatype" },
        { "resnext", KServeBody(new Dictionary<string, HostTensor> { ["pixels"] = Resnext.Inputs["image"] }), HttpStatusCode.BadRequest, "inputs[0].name" },
        { "resnext", KServeBody(Resnext.Inputs, outputs: "[{\"name\":\"logits\"}]"), HttpStatusCode.BadRequest, "outputs[0].name" },
        { "resnext", "{\"inputs\": [{\"name\": \"image\", \"datatype\": \"FP32\", \"shape\": [1,3,64,64], \"data\": [1, \"x\"]}]}", HttpStatusCode.BadRequest, "inputs[image].data" },
        { "resnext", "{\"inputs\": []}", HttpStatusCode.BadRequest, "inputs" },
        { "resnext", "{\"inputs\": [", HttpStatusCode.BadRequest, "body" },
        { "detector", KServeBody(new Dictionary<string, HostTensor> { ["image"] = HostTensor.Of(new float[3 * 64 * 64], 3, 64, 64) }), HttpStatusCode.BadRequest, "inputs[image].shape" },
        { "video3d", KServeBody(new Dictionary<string, HostTensor> { ["clip"] = HostTensor.Of(new float[3 * 4 * 32 * 32], 1, 3, 4, 32, 32) }), HttpStatusCode.BadRequest, "inputs[clip].shape" },
        { "video-frames", KServeBody(new Dictionary<string, HostTensor> { ["clip"] = HostTensor.Of(new float[3 * 2 * 32 * 32], 1, 3, 2, 32, 32) }), HttpStatusCode.BadRequest, "inputs[clip].shape" },
    };

    [Theory]
    [MemberData(nameof(KServeCases))]
    public async Task Bad_kserve_requests_are_refused_naming_the_field(string model, string body, HttpStatusCode expected, string field)
    {
        var (status, error, _) = await HttpHelpers.PostJsonAsync(Http, $"/v2/models/{model}/infer", body);
        Assert.True(status == expected, $"{status} {error?.ToJsonString()}");
        Assert.Equal(field, error!["field"]!.GetValue<string>());
        await AssertStillServes();
    }

    [Theory]
    [InlineData("/v1/models/resnext/classify", "{\"tensor\": [[1, 2], [3]]}", 400, "tensor")]
    [InlineData("/v1/models/resnext/classify", "{\"tensor\": [1, 2, 3]}", 400, "tensor")]
    [InlineData("/v1/models/resnext/classify", "{\"image\": \"bm90IGFuIGltYWdl\"}", 400, "image")]
    [InlineData("/v1/models/resnext/classify", "{\"image\": \"***\"}", 400, "image")]
    [InlineData("/v1/models/resnext/classify", "{}", 400, "tensor")]
    [InlineData("/v1/models/resnext/classify", "{\"image\": \"AA==\", \"top_k\": 0}", 400, "top_k")]
    [InlineData("/v1/models/resnext/detect", "{\"tensor\": [1]}", 400, "name")]
    [InlineData("/v1/models/detector/classify", "{\"tensor\": [1]}", 400, "name")]
    [InlineData("/v1/models/dot/classify", "{\"tensor\": [1]}", 400, "name")]
    [InlineData("/v1/models/nosuch/classify", "{\"tensor\": [1]}", 404, "name")]
    [InlineData("/v2/models/nosuch/infer", "{\"inputs\": []}", 404, "name")]
    [InlineData("/v1/models/video3d/classify-video", "{\"image\": \"AA==\"}", 400, "image")]
    [InlineData("/v1/models/detector/detect", "{\"tensor\": [[[1]]]}", 400, "tensor")]
    public async Task Bad_convenience_requests_are_refused_naming_the_field(string path, string body, int expected, string field)
    {
        var (status, error, _) = await HttpHelpers.PostJsonAsync(Http, path, body);
        Assert.True((int)status == expected, $"{status} {error?.ToJsonString()}");
        Assert.Equal(field, error!["field"]!.GetValue<string>());
        await AssertStillServes();
    }

    [Fact]
    public async Task Top_k_beyond_the_class_count_is_refused()
    {
        var (status, error, _) = await HttpHelpers.PostJsonAsync(Http, "/v1/models/resnext/classify", $"{{\"tensor\": {NestedData(Resnext.Inputs["image"])}, \"top_k\": 11}}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("top_k", error!["field"]!.GetValue<string>());
        Assert.Contains("10 classes", error["error"]!.GetValue<string>(), StringComparison.Ordinal);
        await AssertStillServes();
    }

    [Fact]
    public async Task Bytes_that_are_not_an_image_get_400()
    {
        var (status, error, _) = await HttpHelpers.PostAsync(Http, "/v1/models/resnext/classify", Encoding.UTF8.GetBytes("plain text, not an image"), "image/png");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("image", error!["field"]!.GetValue<string>());
        Assert.Contains("not an image", error["error"]!.GetValue<string>(), StringComparison.Ordinal);
        await AssertStillServes();
    }

    [Fact]
    public async Task An_image_over_the_pixel_limit_gets_413_before_decoding()
    {
        byte[] png = Png(1100, 1000);
        var (status, error, _) = await HttpHelpers.PostAsync(Http, "/v1/models/resnext/classify", png, "image/png");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("image", error!["field"]!.GetValue<string>());
        Assert.Contains($"limit of {MaxPixels}", error["error"]!.GetValue<string>(), StringComparison.Ordinal);
        var (ok, body, _) = await HttpHelpers.PostAsync(Http, "/v1/models/resnext/classify", Png(1000, 1000), "image/png");
        Assert.True(ok == HttpStatusCode.OK, body?.ToJsonString());
        await AssertStillServes();
    }

    [Fact]
    public async Task A_gif_gets_415_and_an_unsupported_content_type_too()
    {
        // A valid 1x1 GIF: an image, but not one this endpoint takes.
        var (gif, gifError, _) = await HttpHelpers.PostAsync(Http, "/v1/models/resnext/classify", Convert.FromBase64String("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="), "image/png");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, gif);
        Assert.Equal("image", gifError!["field"]!.GetValue<string>());
        Assert.Contains("PNG or JPEG", gifError["error"]!.GetValue<string>(), StringComparison.Ordinal);
        var (status, error, _) = await HttpHelpers.PostAsync(Http, "/v1/models/resnext/classify", Encoding.UTF8.GetBytes("hello"), "text/plain");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
        Assert.Equal("Content-Type", error!["field"]!.GetValue<string>());
        await AssertStillServes();
    }

    [Fact]
    public async Task A_deadline_header_that_is_not_a_number_is_refused()
    {
        var (status, error, _) = await HttpHelpers.PostJsonAsync(Http, "/v2/models/resnext/infer", Good, new Dictionary<string, string> { ["X-Deadline-Ms"] = "soon" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("X-Deadline-Ms", error!["field"]!.GetValue<string>());
        await AssertStillServes();
    }

    private async Task AssertStillServes()
    {
        var (status, body, _) = await HttpHelpers.PostJsonAsync(Http, "/v2/models/resnext/infer", Good);
        Assert.True(status == HttpStatusCode.OK, body?.ToJsonString());
        AssertClose(Resnext.Outputs["probs"].Floats, Floats(body!["outputs"]![0]!["data"]!), 1e-4, "resnext after a bad request");
    }

    private static byte[] Png(int width, int height)
    {
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        bitmap.Erase(new SKColor(90, 30, 200));
        using SKData data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
