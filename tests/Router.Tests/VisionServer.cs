using System.Text;
using System.Text.Json.Nodes;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Hosting;

namespace Recsys.Router.Tests;

/// <summary>
/// One single-node server (every role, real Kestrel) whose repository holds the four vision
/// fixtures and the "dot" DLRM fixture, so vision and ranking share its front end and scheduler.
/// The served resnext copy lowers preprocessing.max_pixels to 1024x1024 so the oversized-image
/// test needs only a small PNG.
/// </summary>
public sealed class VisionServer : IAsyncLifetime
{
    public static readonly string[] VisionModels = ["resnext", "detector", "video3d", "video-frames"];
    public const long MaxPixels = 1024 * 1024;

    private TestServer _server = null!;

    public RecsysServer Server => _server.Server;
    public HttpClient Http => _server.Http;

    public static string FixtureRoot => Path.Combine(AppContext.BaseDirectory, "fixtures", "vision");

    public async Task InitializeAsync() =>
        _server = await TestServer.StartAsync("vision", models =>
        {
            foreach (string name in VisionModels) TestModels.Copy(Path.Combine(FixtureRoot, name, "1"), Path.Combine(models, name, "1"));
            string resnextJson = Path.Combine(models, "resnext", "1", "model.json");
            JsonObject spec = JsonNode.Parse(File.ReadAllText(resnextJson))!.AsObject();
            spec["preprocessing"]!["max_pixels"] = MaxPixels;
            File.WriteAllText(resnextJson, spec.ToJsonString());
            TestModels.Copy(RouterCluster.FixtureDirectory("dot"), Path.Combine(models, "dot", "1"), "model.json", "weights.safetensors");
        }, options => options with { MaxBodyBytes = 8L << 20 });

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }

    public sealed record Case(string Name, Dictionary<string, HostTensor> Inputs, Dictionary<string, HostTensor> Outputs);

    /// <summary>PyTorch's cases for a fixture (tools/make_vision_fixtures.py).</summary>
    public static IReadOnlyList<Case> Cases(string name)
    {
        JsonNode doc = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureRoot, name, "reference.json")))!;
        return [.. doc["cases"]!.AsArray().Select(c => new Case(
            c!["name"]!.GetValue<string>(),
            c["inputs"]!.AsObject().ToDictionary(kv => kv.Key, kv => Tensor(kv.Value!)),
            c["outputs"]!.AsObject().ToDictionary(kv => kv.Key, kv => Tensor(kv.Value!))))];
    }

    public static HostTensor Tensor(JsonNode node)
    {
        long[] shape = [.. node["shape"]!.AsArray().Select(d => d!.GetValue<long>())];
        byte[] raw = Convert.FromBase64String(node["b64"]!.GetValue<string>());
        return node["datatype"]!.GetValue<string>() == "FP32"
            ? HostTensor.Of(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw).ToArray(), shape)
            : HostTensor.Of(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(raw).ToArray(), shape);
    }

    /// <summary>Flat JSON array of a tensor's values, floats round-tripping exactly.</summary>
    public static string JsonData(HostTensor t)
    {
        var sb = new StringBuilder(t.Element == ElementKind.Float32 ? (int)t.Length * 12 : (int)t.Length * 4);
        sb.Append('[');
        for (int i = 0; i < t.Length; i++)
        {
            if (i > 0) sb.Append(',');
            if (t.Data is float[] f) sb.Append(f[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            else sb.Append(((long[])t.Data)[i].ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.Append(']').ToString();
    }

    /// <summary>Nested JSON arrays of a tensor's values (the convenience endpoints' form).</summary>
    public static string NestedData(HostTensor t)
    {
        var sb = new StringBuilder((int)t.Length * 12);
        int at = 0;
        Nest(sb, t, 0, ref at);
        return sb.ToString();
    }

    private static void Nest(StringBuilder sb, HostTensor t, int depth, ref int at)
    {
        sb.Append('[');
        for (long i = 0; i < t.Shape[depth]; i++)
        {
            if (i > 0) sb.Append(',');
            if (depth == t.Rank - 1) sb.Append(t.Floats[at++].ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            else Nest(sb, t, depth + 1, ref at);
        }
        sb.Append(']');
    }

    public static string KServeBody(IReadOnlyDictionary<string, HostTensor> inputs, string? outputs = null, string? datatype = null, string? shape = null) =>
        "{\"id\":\"t1\",\"inputs\":[" + string.Join(",", inputs.Select(kv =>
            $"{{\"name\":\"{kv.Key}\",\"datatype\":\"{datatype ?? (kv.Value.Element == ElementKind.Float32 ? "FP32" : "INT64")}\",\"shape\":{shape ?? "[" + string.Join(",", kv.Value.Shape) + "]"},\"data\":{JsonData(kv.Value)}}}"))
        + "]" + (outputs is null ? "" : $",\"outputs\":{outputs}") + "}";

    public static float[] Floats(JsonNode data) => [.. data.AsArray().Select(x => x!.GetValue<float>())];

    public static void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{what}[{i}]: PyTorch {expected[i]}, served {actual[i]} (tolerance {tolerance})");
    }
}

[CollectionDefinition(Name)]
public sealed class VisionServerCollection : ICollectionFixture<VisionServer>
{
    public const string Name = "vision server";
}
