using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Seq2Seq;
using Recsys.Router.Hosting;
using Recsys.Router.Http;
using Recsys.Router.Metrics;
using Recsys.Router.Scheduling;
using Recsys.Router.Workloads;

namespace Recsys.Router.Translation;

/// <summary>POST /v1/models/{name}/translate, and the error mapping every translation entry point shares.</summary>
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
        HttpResponse response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "application/json";
        using (var writer = new Utf8JsonWriter(response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteString("model", model.Name);
            writer.WriteString("version", model.Version);
            writer.WriteStartArray("source_ids");
            foreach (int id in request.Source) writer.WriteNumberValue(id);
            writer.WriteEndArray();
            writer.WriteStartArray("translations");
            foreach (Hypothesis h in result.Hypotheses)
            {
                writer.WriteStartObject();
                if (model.Model.Decode(h.Ids) is { } text) writer.WriteString("text", text);
                writer.WriteStartArray("ids");
                foreach (int id in h.Ids) writer.WriteNumberValue(id);
                writer.WriteEndArray();
                writer.WriteNumber("score", h.Score);
                writer.WriteNumber("log_prob", h.LogProb);
                writer.WriteBoolean("finished", h.Finished);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteNumber("steps", result.Steps);
            writer.WriteEndObject();
        }
        await response.BodyWriter.FlushAsync(cancel).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the JSON body within the server's limit under the request deadline and runs the
    /// handler; every failure becomes a JSON error naming the field, and the server keeps serving.
    /// </summary>
    internal static async Task ServeAsync(HttpContext context, TranslationWorkload model, Func<HttpContext, TranslationWorkload, ReadOnlyMemory<byte>, long, CancellationToken, Task> handler)
    {
        IServiceProvider services = context.RequestServices;
        ServeOptions options = services.GetRequiredService<ServeOptions>();
        long started = Stopwatch.GetTimestamp();
        int status = 200;
        TimeSpan budget = options.Deadline;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        try
        {
            budget = RequestDeadline.Read(context.Request, options.Deadline);
            RequestDeadline.Arm(deadline, budget);
            RequireJson(context.Request);
            using RequestBody body = await RequestBody.ReadAsync(context.Request, options.MaxBodyBytes, deadline.Token).ConfigureAwait(false);
            await handler(context, model, body.Memory, started + (long)(budget.TotalSeconds * Stopwatch.Frequency), deadline.Token).ConfigureAwait(false);
            status = context.Response.StatusCode;
        }
        catch (InvalidRequestException e)
        {
            status = e.Status;
            await ApiErrors.WriteAsync(context, status, e.Field, e.Message).ConfigureAwait(false);
        }
        catch (DecodeQueueFullException e)
        {
            status = 429;
            await ApiErrors.WriteAsync(context, status, "model", e.Message, retryAfter: TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        catch (SchedulerRejectedException e)
        {
            status = 503;
            await ApiErrors.WriteAsync(context, status, "model", e.Message, retryAfter: e.RetryAfter).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            status = 503;
            await ApiErrors.WriteAsync(context, status, "model", $"model '{model.Name}' version {model.Version} is being unloaded; retry", retryAfter: TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            status = 499;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            status = 504;
            // The deadline may have cut the body read short: the connection cannot carry another request.
            context.Response.Headers.Connection = "close";
            await ApiErrors.WriteAsync(context, status, "deadline", $"not answered within {budget.TotalMilliseconds:0} ms; the request left the decode batch").ConfigureAwait(false);
        }
        catch (BadHttpRequestException e)
        {
            status = e.StatusCode;
            await ApiErrors.WriteAsync(context, status, "body", e.Message).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            status = 500;
            services.GetService<ILoggerFactory>()?.CreateLogger(typeof(TranslationEndpoints)).LogError(e, "translation request for model {Model} failed", model.Name);
            await ApiErrors.WriteAsync(context, status, "server", $"{e.GetType().Name}: {e.Message}").ConfigureAwait(false);
        }
        finally
        {
            ModelMetrics metrics = services.GetRequiredService<ServingMetrics>().For(model.Name);
            metrics.CountRequest(status);
            if (status == 200) metrics.Observe(Stage.Total, Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>A client may ask for a shorter deadline than the server's (X-Deadline-Ms), never a longer one.</summary>
    private static void RequireJson(HttpRequest request)
    {
        string? type = request.ContentType;
        if (string.IsNullOrEmpty(type) || type.Split(';', 2)[0].Trim().Equals("application/json", StringComparison.OrdinalIgnoreCase)) return;
        throw new InvalidRequestException("Content-Type", $"'{type}' is not supported (send application/json)", 415);
    }
}
