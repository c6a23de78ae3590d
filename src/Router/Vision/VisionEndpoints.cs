using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Http;
using Recsys.Router.Repository;
using Recsys.Router.Workloads;

namespace Recsys.Router.Vision;

/// <summary>
/// The convenience endpoints over vision models: /classify (image tensor, or PNG/JPEG decoded and
/// normalised per model.json; top-k labels out), /detect (boxes, labels, scores after the model's
/// NMS, per image) and /classify-video (a clip tensor). All go through the model's scheduler queue.
/// </summary>
internal static class VisionEndpoints
{
    private const int DefaultTopK = 5;

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/models/{name}/classify", (HttpContext context, string name, WorkloadRegistry workloads, ModelRegistry ranking) =>
            Dispatch(context, name, VisionKind.Classification, "classify", workloads, ranking, ClassifyAsync));
        app.MapPost("/v1/models/{name}/detect", (HttpContext context, string name, WorkloadRegistry workloads, ModelRegistry ranking) =>
            Dispatch(context, name, VisionKind.Detection, "detect", workloads, ranking, DetectAsync));
        app.MapPost("/v1/models/{name}/classify-video", (HttpContext context, string name, WorkloadRegistry workloads, ModelRegistry ranking) =>
            Dispatch(context, name, VisionKind.Video, "classify-video", workloads, ranking, ClassifyVideoAsync));
    }

    private static Task Dispatch(HttpContext context, string name, VisionKind kind, string endpoint, WorkloadRegistry workloads, ModelRegistry ranking,
        Func<HttpContext, VisionWorkload, VisionCall, Task> handle)
    {
        if (!workloads.TryGet(name, out IServedWorkload served))
        {
            return ranking.IsServed(name)
                ? ApiErrors.WriteAsync(context, 400, "name", $"model '{name}' is a ranking model; use /v1/models/{name}/rank")
                : ApiErrors.WriteAsync(context, 404, "name", $"model '{name}' is not served");
        }
        if (served is not VisionWorkload model || model.Model.Kind != kind)
        {
            string hint = served is VisionWorkload v ? $"; use /v1/models/{name}/{EndpointOf(v.Model.Kind)}" : "";
            return ApiErrors.WriteAsync(context, 400, "name", $"model '{name}' is a {served.Kind} model, /{endpoint} serves {kind.ToString().ToLowerInvariant()} models{hint}");
        }
        return VisionCall.ServeAsync(context, model, call => handle(context, model, call));
    }

    private static string EndpointOf(VisionKind kind) => kind switch
    {
        VisionKind.Classification => "classify",
        VisionKind.Detection => "detect",
        _ => "classify-video",
    };

    private static async Task ClassifyAsync(HttpContext context, VisionWorkload model, VisionCall call)
    {
        ConvenienceBody body = await ConvenienceBody.ReadAsync(context, model, call, "tensor").ConfigureAwait(false);
        HostTensor input = body.Image is { } image ? model.Model.ImageInput(image, out _, out _) : Batched(model.Model, body.Tensor!);
        await WriteClassesAsync(model, call, input, body.TopK).ConfigureAwait(false);
    }

    private static async Task ClassifyVideoAsync(HttpContext context, VisionWorkload model, VisionCall call)
    {
        ConvenienceBody body = await ConvenienceBody.ReadAsync(context, model, call, "clip").ConfigureAwait(false);
        if (body.Image is not null) throw new InvalidRequestException("image", "a video model takes a clip tensor {\"clip\": [...]}, not an image");
        await WriteClassesAsync(model, call, Batched(model.Model, body.Tensor!), body.TopK).ConfigureAwait(false);
    }

    private static async Task WriteClassesAsync(VisionWorkload model, VisionCall call, HostTensor input, int? topK)
    {
        VisionModel m = model.Model;
        SingleInput(m);
        var inputs = new Dictionary<string, HostTensor> { [m.PrimaryInput.Name] = input };
        m.CheckInputs(inputs, _ => "tensor");
        HostTensor scores = (await model.RunAsync(new GraphRequest(inputs, [m.ScoresOutput]), call).ConfigureAwait(false))[m.ScoresOutput];
        int classes = (int)scores.Shape[1];
        int k = topK ?? Math.Min(DefaultTopK, classes);
        if (k > classes) throw new InvalidRequestException("top_k", $"is {k}, the model has {classes} classes");
        ClassScore[][] rows = TopK.Rows(scores, k, m.Labels);
        await call.WriteJsonAsync(w =>
        {
            w.WriteString("model", model.Name);
            w.WriteString("version", model.Version);
            w.WriteStartArray("predictions");
            foreach (ClassScore[] row in rows)
            {
                w.WriteStartArray();
                foreach (ClassScore c in row)
                {
                    w.WriteStartObject();
                    w.WriteNumber("index", c.Index);
                    if (c.Label is not null) w.WriteString("label", c.Label);
                    w.WriteNumber("score", c.Score);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndArray();
        }).ConfigureAwait(false);
    }

    private static async Task DetectAsync(HttpContext context, VisionWorkload model, VisionCall call)
    {
        VisionModel m = model.Model;
        SingleInput(m);
        ConvenienceBody body = await ConvenienceBody.ReadAsync(context, model, call, "tensor").ConfigureAwait(false);
        List<HostTensor> images = [];
        float sx = 1, sy = 1;
        int perImageRank = m.PrimaryInput.Rank == 4 ? 3 : m.PrimaryInput.Rank;
        if (body.Image is { } bytes)
        {
            HostTensor t = m.ImageInput(bytes, out int width, out int height);
            // Boxes go back in the sent image's pixels, not the resized input's.
            sx = (float)width / m.Images!.Width;
            sy = (float)height / m.Images.Height;
            images.Add(t);
        }
        else
        {
            HostTensor t = body.Tensor!;
            if (t.Rank == perImageRank + 1)
            {
                for (long i = 0; i < t.Shape[0]; i++)
                {
                    HostTensor one = t.Rows(i, 1);
                    images.Add(m.PrimaryInput.Rank == perImageRank ? Reshape(one, one.Shape[1..]) : one);
                }
            }
            else if (t.Rank == perImageRank)
            {
                images.Add(m.PrimaryInput.Rank == perImageRank ? t : Reshape(t, [1, .. t.Shape]));
            }
            else
            {
                throw new InvalidRequestException("tensor", $"has shape {TensorSignature.Describe(t.Shape)}; send one image {TensorSignature.Describe(m.PrimaryInput.Dims[^perImageRank..])} or a batch of them");
            }
        }
        var requests = new List<Task<IReadOnlyDictionary<string, HostTensor>>>(images.Count);
        foreach (HostTensor image in images)
        {
            var inputs = new Dictionary<string, HostTensor> { [m.PrimaryInput.Name] = image };
            m.CheckInputs(inputs, _ => "tensor");
            requests.Add(model.RunAsync(new GraphRequest(inputs, [m.BoxesOutput, m.LabelsOutput, m.ScoresOutput]), call));
        }
        IReadOnlyDictionary<string, HostTensor>[] results = await Task.WhenAll(requests).ConfigureAwait(false);
        await call.WriteJsonAsync(w =>
        {
            w.WriteString("model", model.Name);
            w.WriteString("version", model.Version);
            w.WriteStartArray("detections");
            foreach (IReadOnlyDictionary<string, HostTensor> r in results)
            {
                w.WriteStartArray();
                foreach (Detection found in Detection.FromOutputs(r[m.BoxesOutput], r[m.LabelsOutput], r[m.ScoresOutput], m.Labels))
                {
                    Detection d = found.Scaled(sx, sy);
                    w.WriteStartObject();
                    w.WriteStartArray("box");
                    w.WriteNumberValue(d.X1);
                    w.WriteNumberValue(d.Y1);
                    w.WriteNumberValue(d.X2);
                    w.WriteNumberValue(d.Y2);
                    w.WriteEndArray();
                    w.WriteNumber("class", d.Class);
                    if (d.Label is not null) w.WriteString("label", d.Label);
                    w.WriteNumber("score", d.Score);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndArray();
        }).ConfigureAwait(false);
    }

    private static HostTensor Reshape(HostTensor t, long[] shape) => t.Data switch
    {
        float[] f => HostTensor.Of(f, shape),
        long[] l => HostTensor.Of(l, shape),
        _ => HostTensor.Of((byte[])t.Data, shape),
    };

    /// <summary>One sample without its batch dimension gets one: [3, H, W] for an [N, 3, H, W] graph.</summary>
    private static HostTensor Batched(VisionModel m, HostTensor t) =>
        t.Rank == m.PrimaryInput.Rank - 1 ? Reshape(t, [1, .. t.Shape]) : t;

    private static void SingleInput(VisionModel m)
    {
        if (m.Inputs.Count != 1) throw new InvalidRequestException("name", $"this model takes {m.Inputs.Count} inputs; send them through /v2/models/{{name}}/infer", 422);
    }

    /// <summary>
    /// What a convenience endpoint was sent: a raw image/png or image/jpeg body (top_k in the query),
    /// or JSON {"image": base64} / {"tensor" | "clip": nested array, "shape"?: [...]} with "top_k".
    /// </summary>
    private sealed record ConvenienceBody(HostTensor? Tensor, byte[]? Image, int? TopK)
    {
        public static async Task<ConvenienceBody> ReadAsync(HttpContext context, VisionWorkload model, VisionCall call, string tensorKey)
        {
            HttpRequest request = context.Request;
            int? topK = request.Query.TryGetValue("top_k", out var q) ? TopKValue(q.ToString()) : null;
            string media = (request.ContentType ?? "application/json").Split(';', 2)[0].Trim().ToLowerInvariant();
            using RequestBody body = await RequestBody.ReadAsync(request, model.Options.MaxBodyBytes, call.Cancel).ConfigureAwait(false);
            if (media is "image/png" or "image/jpeg" or "application/octet-stream") return new ConvenienceBody(null, body.Span.ToArray(), topK);
            if (media != "application/json") throw new InvalidRequestException("Content-Type", $"'{request.ContentType}' is not supported (send application/json, image/png or image/jpeg)", 415);
            using JsonDocument doc = KServeTensors.Parse(body.Memory);
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidRequestException("body", $"must be a JSON object with \"{tensorKey}\"{(tensorKey == "tensor" ? " or \"image\"" : "")}");
            if (root.TryGetProperty("top_k", out JsonElement k) && k.ValueKind != JsonValueKind.Null)
            {
                topK = k.ValueKind == JsonValueKind.Number && k.TryGetInt32(out int v) && v >= 1 ? v : throw new InvalidRequestException("top_k", "must be a positive integer");
            }
            bool hasTensor = root.TryGetProperty(tensorKey, out JsonElement data) && data.ValueKind != JsonValueKind.Null;
            bool hasImage = root.TryGetProperty("image", out JsonElement image) && image.ValueKind != JsonValueKind.Null;
            if (hasTensor == hasImage)
            {
                throw new InvalidRequestException(tensorKey, hasTensor ? $"send either \"{tensorKey}\" or \"image\", not both" : $"missing: send \"{tensorKey}\" (nested array) or \"image\" (base64 PNG/JPEG)");
            }
            if (hasImage)
            {
                if (image.ValueKind != JsonValueKind.String || !image.TryGetBytesFromBase64(out byte[]? bytes)) throw new InvalidRequestException("image", "must be a base64 string of PNG or JPEG bytes");
                return new ConvenienceBody(null, bytes, topK);
            }
            long[]? shape = null;
            if (root.TryGetProperty("shape", out JsonElement s) && s.ValueKind != JsonValueKind.Null)
            {
                if (s.ValueKind != JsonValueKind.Array) throw new InvalidRequestException("shape", "must be an array of positive integers");
                shape = [.. s.EnumerateArray().Select((d, i) => d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out long v) && v > 0 ? v : throw new InvalidRequestException($"shape[{i}]", "must be a positive integer"))];
            }
            return new ConvenienceBody(KServeTensors.Tensor(data, model.Model.PrimaryInput.Element, shape, tensorKey), null, topK);
        }

        private static int TopKValue(string text) =>
            int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int k) && k >= 1
                ? k
                : throw new InvalidRequestException("top_k", $"'{text}' is not a positive integer");
    }
}
