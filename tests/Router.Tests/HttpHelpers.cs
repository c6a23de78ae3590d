using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using MessagePack;

namespace Recsys.Router.Tests;

/// <summary>Small HTTP and encoding helpers for the tests: JSON and MessagePack bodies, score extraction.</summary>
internal static class HttpHelpers
{
    public static async Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> PostAsync(HttpClient http, string path, byte[] body, string contentType, string? accept = null, IDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (accept is not null) request.Headers.Accept.ParseAdd(accept);
        foreach (var (k, v) in headers ?? new Dictionary<string, string>()) request.Headers.TryAddWithoutValidation(k, v);
        HttpResponseMessage response = await http.SendAsync(request);
        byte[] bytes = await response.Content.ReadAsByteArrayAsync();
        JsonNode? node = response.Content.Headers.ContentType?.MediaType == "application/json" && bytes.Length > 0 ? JsonNode.Parse(bytes) : null;
        return (response.StatusCode, node, response);
    }

    public static Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> PostJsonAsync(HttpClient http, string path, string json, IDictionary<string, string>? headers = null) =>
        PostAsync(http, path, Encoding.UTF8.GetBytes(json), "application/json", headers: headers);

    /// <summary>Scores as sample-major floats (one per sample, or E per sample for multi-event models).</summary>
    public static float[] Flatten(JsonNode scores)
    {
        var list = new List<float>();
        foreach (JsonNode? s in scores.AsArray())
        {
            if (s is JsonArray inner) list.AddRange(inner.Select(x => x!.GetValue<float>()));
            else list.Add(s!.GetValue<float>());
        }
        return [.. list];
    }

    /// <summary>The "fp32" (or other storage) scores of a fixture's expected.json, sample-major.</summary>
    public static float[] Expected(string fixture, string storage = "fp32") =>
        Flatten(JsonNode.Parse(File.ReadAllText(Path.Combine(RouterCluster.FixtureDirectory(fixture), "expected.json")))![storage]!);

    public static string Request(string fixture) => File.ReadAllText(Path.Combine(RouterCluster.FixtureDirectory(fixture), "request.json"));

    public static void AssertClose(float[] expected, float[] actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"score {i}: expected {expected[i]}, got {actual[i]} (tolerance {tolerance})");
        }
    }

    /// <summary>Encodes a JSON document as MessagePack with the same structure (integers stay integers, other numbers become float64).</summary>
    public static byte[] ToMessagePack(JsonNode node)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        Write(ref writer, node);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static void Write(ref MessagePackWriter writer, JsonNode? node)
    {
        switch (node)
        {
            case null:
                writer.WriteNil();
                break;
            case JsonObject o:
                writer.WriteMapHeader(o.Count);
                foreach (var (k, v) in o)
                {
                    writer.Write(k);
                    Write(ref writer, v);
                }
                break;
            case JsonArray a:
                writer.WriteArrayHeader(a.Count);
                foreach (JsonNode? v in a) Write(ref writer, v);
                break;
            case JsonValue v when v.TryGetValue(out string? s):
                writer.Write(s);
                break;
            default:
                string raw = node.ToJsonString();
                if (long.TryParse(raw, out long l)) writer.Write(l);
                else writer.Write(double.Parse(raw, System.Globalization.CultureInfo.InvariantCulture));
                break;
        }
    }

    /// <summary>Reads a MessagePack answer {"model", "version", "scores"}.</summary>
    public static (string Model, string Version, float[] Scores) ReadMessagePackScores(byte[] body)
    {
        var reader = new MessagePackReader(body);
        int fields = reader.ReadMapHeader();
        string model = "", version = "";
        var scores = new List<float>();
        for (int i = 0; i < fields; i++)
        {
            string key = reader.ReadString()!;
            if (key == "model") model = reader.ReadString()!;
            else if (key == "version") version = reader.ReadString()!;
            else if (key == "scores")
            {
                int n = reader.ReadArrayHeader();
                for (int b = 0; b < n; b++)
                {
                    if (reader.NextMessagePackType == MessagePackType.Array)
                    {
                        int e = reader.ReadArrayHeader();
                        for (int j = 0; j < e; j++) scores.Add(reader.ReadSingle());
                    }
                    else
                    {
                        scores.Add(reader.ReadSingle());
                    }
                }
            }
            else reader.Skip();
        }
        return (model, version, [.. scores]);
    }
}
