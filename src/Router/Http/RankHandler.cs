using System.Text.Json;
using MessagePack;
using Microsoft.AspNetCore.Http;
using Recsys.DenseCompute.Dlrm;
using Recsys.Router.Hosting;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;
using Recsys.Router.Serving;

namespace Recsys.Router.Http;

/// <summary>
/// The shared path of every scoring endpoint: read the body within its size limit, choose the model
/// version, parse against that version's spec, queue on its batcher under the request deadline,
/// write the answer. Every failure becomes a JSON error naming the field; the server keeps serving.
/// </summary>
internal sealed class RankHandler(ModelRegistry registry, ServeOptions options, ServingMetrics metrics)
{
    private enum Wire
    {
        Json,
        MessagePack,
    }

    /// <summary>POST /v1/models/{name}/rank: the JSON or MessagePack body, or the context-and-candidates form in either.</summary>
    public Task RankAsync(HttpContext context, string name) => ServeAsync(context, name, kserve: false);

    /// <summary>POST /v2/models/{name}/infer and /v2/models/{name}/versions/{version}/infer.</summary>
    public Task InferAsync(HttpContext context, string name, string? version) => ServeAsync(context, name, kserve: true, version);

    private async Task ServeAsync(HttpContext context, string name, bool kserve, string? pathVersion = null)
    {
        int status = 200;
        ServedModel? model = null;
        using var clock = new RequestClock(context, options.Deadline);
        try
        {
            clock.Arm();
            Wire wire = RequestWire(context.Request, kserve);
            using RequestBody body = await RequestBody.ReadAsync(context.Request, options.MaxBodyBytes, clock.Token).ConfigureAwait(false);
            RankInput input;
            string? kserveId = null;
            if (kserve)
            {
                model = await registry.AcquireAsync(name, pathVersion, clock.Token).ConfigureAwait(false);
                input = RankInput.From(KServeInferReader.Parse(body.Memory, model.Spec, options.MaxRequestSamples, out kserveId));
            }
            else if (wire == Wire.MessagePack && MessagePackContextReader.IsContextForm(body.Memory, out string? packedVersion))
            {
                model = await registry.AcquireAsync(name, packedVersion, clock.Token).ConfigureAwait(false);
                input = MessagePackContextReader.Parse(body.Memory, model.Spec, options.MaxRequestSamples);
            }
            else if (wire == Wire.MessagePack)
            {
                model = await registry.AcquireAsync(name, MessagePackRankReader.ReadVersion(body.Memory), clock.Token).ConfigureAwait(false);
                input = RankInput.From(MessagePackRankReader.Parse(body.Memory, model.Spec, options.MaxRequestSamples));
            }
            else if (ContextCandidatesReader.IsContextForm(body.Span, out string? contextVersion))
            {
                model = await registry.AcquireAsync(name, contextVersion, clock.Token).ConfigureAwait(false);
                input = ContextCandidatesReader.Parse(body.Memory, model.Spec, options.MaxRequestSamples);
            }
            else
            {
                model = await registry.AcquireAsync(name, JsonRankBody.ReadVersion(body.Span), clock.Token).ConfigureAwait(false);
                input = RankInput.From(JsonRankBody.Parse(body.Span, model.Spec, options.MaxRequestSamples));
            }

            float[] scores = await model.Batcher.RankAsync(input, clock.Token).WaitAsync(clock.Token).ConfigureAwait(false);
            if (kserve) await WriteKServeAsync(context, model, input.Batch, scores, kserveId).ConfigureAwait(false);
            else await WriteScoresAsync(context, model, input.Batch, scores, Accepts(context.Request, MessagePackRankReader.ContentType) ? Wire.MessagePack : Wire.Json).ConfigureAwait(false);
            model.Metrics.Observe(Stage.Total, clock.Elapsed);
        }
        catch (Exception e)
        {
            status = await ErrorResponse.AnswerAsync(context, e, clock, typeof(RankHandler), "ranking", name).ConfigureAwait(false);
        }
        finally
        {
            model?.Release();
            // Only served models get a series: unknown names from the URL must not grow /metrics.
            if (model is not null || registry.IsServed(name)) metrics.For(name).CountRequest(status);
        }
    }

    /// <summary>The body's encoding from Content-Type: JSON (the default), or MessagePack on /v1; anything else is 415.</summary>
    private static Wire RequestWire(HttpRequest request, bool kserve)
    {
        string? type = request.ContentType;
        if (string.IsNullOrEmpty(type)) return Wire.Json;
        string media = type.Split(';', 2)[0].Trim();
        if (media.Equals("application/json", StringComparison.OrdinalIgnoreCase)) return Wire.Json;
        if (!kserve && (media.Equals(MessagePackRankReader.ContentType, StringComparison.OrdinalIgnoreCase)
            || media.Equals("application/msgpack", StringComparison.OrdinalIgnoreCase)
            || media.Equals("application/vnd.msgpack", StringComparison.OrdinalIgnoreCase)))
        {
            return Wire.MessagePack;
        }
        throw new InvalidRequestException("Content-Type", kserve
            ? $"'{type}' is not supported (send application/json)"
            : $"'{type}' is not supported (send application/json or {MessagePackRankReader.ContentType})", 415);
    }

    private static bool Accepts(HttpRequest request, string media) =>
        request.Headers.Accept.Any(a => a is not null && a.Contains(media, StringComparison.OrdinalIgnoreCase));

    private static Task WriteScoresAsync(HttpContext context, ServedModel model, int batch, float[] scores, Wire wire)
    {
        if (wire == Wire.MessagePack) return WriteMessagePackScoresAsync(context, model, batch, scores);
        return JsonAnswer.WriteAsync(context, (model, batch, scores), static (writer, answer) =>
        {
            writer.WriteString("model", answer.model.Name);
            writer.WriteString("version", answer.model.Version);
            writer.WriteStartArray("scores");
            WriteScores(writer, answer.scores, answer.batch, answer.model.Spec.Events);
            writer.WriteEndArray();
        }, context.RequestAborted);
    }

    private static async Task WriteMessagePackScoresAsync(HttpContext context, ServedModel model, int batch, float[] scores)
    {
        int events = model.Spec.Events;
        HttpResponse response = context.Response;
        response.StatusCode = 200;
        response.ContentType = MessagePackRankReader.ContentType;
        var writer = new MessagePackWriter(response.BodyWriter);
        writer.WriteMapHeader(3);
        writer.Write("model");
        writer.Write(model.Name);
        writer.Write("version");
        writer.Write(model.Version);
        writer.Write("scores");
        writer.WriteArrayHeader(batch);
        for (int b = 0; b < batch; b++)
        {
            if (events == 1)
            {
                writer.Write(scores[b]);
                continue;
            }
            writer.WriteArrayHeader(events);
            for (int e = 0; e < events; e++) writer.Write(scores[b * events + e]);
        }
        writer.Flush();
        await response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    private static Task WriteKServeAsync(HttpContext context, ServedModel model, int batch, float[] scores, string? id) =>
        JsonAnswer.WriteAsync(context, (model, batch, scores, id), static (writer, answer) =>
        {
            int events = answer.model.Spec.Events;
            writer.WriteString("model_name", answer.model.Name);
            writer.WriteString("model_version", answer.model.Version);
            if (answer.id is not null) writer.WriteString("id", answer.id);
            writer.WriteStartArray("outputs");
            writer.WriteStartObject();
            writer.WriteString("name", "scores");
            writer.WriteString("datatype", "FP32");
            writer.WriteStartArray("shape");
            writer.WriteNumberValue(answer.batch);
            if (events > 1) writer.WriteNumberValue(events);
            writer.WriteEndArray();
            writer.WriteStartArray("data");
            for (int i = 0; i < answer.batch * events; i++) writer.WriteNumberValue(answer.scores[i]);
            writer.WriteEndArray();
            writer.WriteEndObject();
            writer.WriteEndArray();
        }, context.RequestAborted);

    private static void WriteScores(Utf8JsonWriter writer, float[] scores, int batch, int events)
    {
        for (int b = 0; b < batch; b++)
        {
            if (events == 1)
            {
                writer.WriteNumberValue(scores[b]);
                continue;
            }
            writer.WriteStartArray();
            for (int e = 0; e < events; e++) writer.WriteNumberValue(scores[b * events + e]);
            writer.WriteEndArray();
        }
    }
}
