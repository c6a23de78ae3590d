using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Seq2Seq;
using Recsys.Router.Hosting;
using Recsys.Router.Http;
using Recsys.Router.Metrics;
using Recsys.Router.Workloads;

namespace Recsys.Router.Translation;

/// <summary>POST /v1/models/{name}/translate, and the request scope (body, deadline, error answers) every translation entry point shares.</summary>
public static class TranslationEndpoints
{
    public static void Map(IEndpointRouteBuilder app) =>
        app.MapPost("/v1/models/{name}/translate", (HttpContext context, string name, WorkloadRegistry workloads) =>
            workloads.TryGet(name, out IServedWorkload w) && w is TranslationWorkload model
                ? ServeAsync(context, model, TranslateAsync)
                : ApiErrors.WriteAsync(context, 404, "name", workloads.TryGet(name, out IServedWorkload other)
                    ? $"model '{name}' is kind '{other.Kind}', translate needs a seq2seq model"
                    : $"no seq2seq model '{name}' is served"));

    private static async Task TranslateAsync(HttpContext context, TranslationWorkload model, ReadOnlyMemory<byte> body, long deadline, CancellationToken cancel)
    {
        var request = TranslateRequest.Parse(body, model.Model);
        DecodeResult result = await model.TranslateAsync(request.Source, request.Options, deadline, cancel).WaitAsync(cancel).ConfigureAwait(false);
        await JsonAnswer.WriteAsync(context, (model, request, result), static (writer, answer) =>
        {
            writer.WriteString("model", answer.model.Name);
            writer.WriteString("version", answer.model.Version);
            writer.WriteStartArray("source_ids");
            foreach (int id in answer.request.Source) writer.WriteNumberValue(id);
            writer.WriteEndArray();
            writer.WriteStartArray("translations");
            foreach (Hypothesis h in answer.result.Hypotheses)
            {
                writer.WriteStartObject();
                if (answer.model.Model.Decode(h.Ids) is { } text) writer.WriteString("text", text);
                writer.WriteStartArray("ids");
                foreach (int id in h.Ids) writer.WriteNumberValue(id);
                writer.WriteEndArray();
                writer.WriteNumber("score", h.Score);
                writer.WriteNumber("log_prob", h.LogProb);
                writer.WriteBoolean("finished", h.Finished);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteNumber("steps", answer.result.Steps);
        }, cancel).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the JSON body within the server's limit under the request deadline and runs the
    /// handler; every failure becomes a JSON error naming the field, and the server keeps serving.
    /// </summary>
    internal static async Task ServeAsync(HttpContext context, TranslationWorkload model, Func<HttpContext, TranslationWorkload, ReadOnlyMemory<byte>, long, CancellationToken, Task> handler)
    {
        IServiceProvider services = context.RequestServices;
        ServeOptions options = services.GetRequiredService<ServeOptions>();
        int status = 200;
        using var clock = new RequestClock(context, options.Deadline);
        try
        {
            clock.Arm();
            RequireJson(context.Request);
            using RequestBody body = await RequestBody.ReadAsync(context.Request, options.MaxBodyBytes, clock.Token).ConfigureAwait(false);
            await handler(context, model, body.Memory, clock.DeadlineTimestamp, clock.Token).ConfigureAwait(false);
            status = context.Response.StatusCode;
        }
        catch (ObjectDisposedException)
        {
            // The decode driver refuses new work once its model is unloading; a retry reaches the
            // version that replaces it. Translation only: elsewhere a disposed object is a bug (500, logged).
            status = await new ErrorResponse(503, "model", $"model '{model.Name}' version {model.Version} is being unloaded; retry", TimeSpan.FromSeconds(1))
                .WriteAsync(context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            status = await ErrorResponse.AnswerAsync(context, e, clock, typeof(TranslationEndpoints), "translation", model.Name).ConfigureAwait(false);
        }
        finally
        {
            ModelMetrics metrics = services.GetRequiredService<ServingMetrics>().For(model.Name);
            metrics.CountRequest(status);
            if (status == 200) metrics.Observe(Stage.Total, clock.Elapsed);
        }
    }

    /// <summary>Translation bodies are JSON only (no Content-Type is taken as JSON); anything else is 415.</summary>
    private static void RequireJson(HttpRequest request)
    {
        string? type = request.ContentType;
        if (string.IsNullOrEmpty(type) || type.Split(';', 2)[0].Trim().Equals("application/json", StringComparison.OrdinalIgnoreCase)) return;
        throw new InvalidRequestException("Content-Type", $"'{type}' is not supported (send application/json)", 415);
    }
}
