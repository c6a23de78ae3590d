using System.Text.Json.Nodes;
using Recsys.OnnxModels.Vision;

namespace Recsys.OnnxModels.Tests;

/// <summary>The fixtures of tools/make_vision_fixtures.py: models under fixtures/vision/&lt;name&gt;/1 and PyTorch's answers in reference.json.</summary>
internal static class VisionFixtures
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "fixtures", "vision");

    public static string ModelJson(string name) => Path.Combine(Root, name, "1", "model.json");

    public sealed record Case(string Name, Dictionary<string, HostTensor> Inputs, Dictionary<string, HostTensor> Outputs);

    public static IReadOnlyList<Case> Cases(string name)
    {
        JsonNode doc = JsonNode.Parse(File.ReadAllText(Path.Combine(Root, name, "reference.json")))!;
        return [.. doc["cases"]!.AsArray().Select(c => new Case(
            c!["name"]!.GetValue<string>(),
            c["inputs"]!.AsObject().ToDictionary(kv => kv.Key, kv => Tensor(kv.Value!)),
            c["outputs"]!.AsObject().ToDictionary(kv => kv.Key, kv => Tensor(kv.Value!))))];
    }

    public static HostTensor Tensor(JsonNode node)
    {
        long[] shape = [.. node["shape"]!.AsArray().Select(d => d!.GetValue<long>())];
        byte[] raw = Convert.FromBase64String(node["b64"]!.GetValue<string>());
        return node["datatype"]!.GetValue<string>() switch
        {
            "FP32" => HostTensor.Of(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw).ToArray(), shape),
            "INT64" => HostTensor.Of(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(raw).ToArray(), shape),
            string other => throw new InvalidDataException(other),
        };
    }

    public static void AssertClose(HostTensor expected, HostTensor actual, double tolerance, string what)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.Element, actual.Element);
        if (expected.Element == ElementKind.Int64)
        {
            Assert.Equal(expected.Longs, actual.Longs);
            return;
        }
        float[] e = expected.Floats, a = actual.Floats;
        for (int i = 0; i < e.Length; i++)
        {
            Assert.True(Math.Abs(e[i] - a[i]) <= tolerance, $"{what}[{i}]: PyTorch {e[i]}, ONNX Runtime {a[i]} (tolerance {tolerance})");
        }
    }
}
