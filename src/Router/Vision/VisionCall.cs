using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Http;
using Recsys.Router.Metrics;
using Recsys.Router.Scheduling;

namespace Recsys.Router.Vision;

/// <summary>
/// One vision request: its deadline (the server's, or a shorter X-Deadline-Ms), its cancellation,
/// and the one place its failures become JSON errors naming the field. The server keeps serving
/// whatever a request sends.
/// </summary>
internal sealed class VisionCall
{
    private readonly HttpContext _context;

    private VisionCall(HttpContext context, CancellationToken cancel, long deadline)
    {
        _context = context;
        Cancel = cancel;
        DeadlineTimestamp = deadline;
    }

    public CancellationToken Cancel { get; }

    /// <summary>Stopwatch timestamp the scheduler orders and refuses by.</summary>
    public long DeadlineTimestamp { get; }

    public static async Task ServeAsync(HttpContext context, VisionWorkload model, Func<VisionCall, Task> handle)
    {
        long started = Stopwatch.GetTimestamp();
        int status = 200;
        TimeSpan budget = model.Options.Deadline;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        try
        {
            budget = RequestDeadline.Read(context.Request, model.Options.Deadline);
            RequestDeadline.Arm(deadline, budget);
            await handle(new VisionCall(context, deadline.Token, ComputeScheduler.DeadlineAfter(budget))).ConfigureAwait(false);
            model.Metrics.For(model.Name).Observe(Stage.Total, Stopwatch.GetElapsedTime(started));
        }
        catch (InvalidRequestException e)
        {
            status = e.Status;
            await ApiErrors.WriteAsync(context, status, e.Field, e.Message).ConfigureAwait(false);
        }
        catch (VisionInputException e)
        {
            status = e.Status;
            await ApiErrors.WriteAsync(context, status, e.Field, e.Message).ConfigureAwait(false);
        }
        catch (SchedulerRejectedException) when (Stopwatch.GetElapsedTime(started) >= budget)
        {
            // Refused because its time was already up: that is a deadline answer, not overload.
            status = 504;
            // The deadline may have cut the body read short: the connection cannot carry another request.
            context.Response.Headers.Connection = "close";
            await ApiErrors.WriteAsync(context, status, "deadline", $"not answered within {budget.TotalMilliseconds:0} ms; the request was dropped").ConfigureAwait(false);
        }
        catch (SchedulerRejectedException e)
        {
            status = 503;
            await ApiErrors.WriteAsync(context, status, "model", e.Message, retryAfter: e.RetryAfter).ConfigureAwait(false);
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
            await ApiErrors.WriteAsync(context, status, "deadline", $"not answered within {budget.TotalMilliseconds:0} ms; the request was dropped").ConfigureAwait(false);
        }
        catch (BadHttpRequestException e)
        {
            status = e.StatusCode;
            await ApiErrors.WriteAsync(context, status, "body", e.Message).ConfigureAwait(false);
        }
        catch (OnnxRuntimeException e)
        {
            // The request passed the graph's declared types and shapes, yet the graph refused it
            // (an image too small for its pooling, say): the input's fault, and only this request's.
            status = 422;
            await ApiErrors.WriteAsync(context, status, "inputs", $"the model could not run this input: {e.Message}").ConfigureAwait(false);
        }
        catch (Exception e)
        {
            status = 500;
            context.RequestServices.GetService<ILogger<VisionWorkload>>()?.LogError(e, "vision request for model {Model} failed", model.Name);
            await ApiErrors.WriteAsync(context, status, "server", $"{e.GetType().Name}: {e.Message}").ConfigureAwait(false);
        }
        finally
        {
            model.Metrics.For(model.Name).CountRequest(status);
        }
    }

    public async Task WriteJsonAsync(Action<Utf8JsonWriter> body)
    {
        HttpResponse response = _context.Response;
        response.StatusCode = 200;
        response.ContentType = "application/json";
        using (var writer = new Utf8JsonWriter(response.BodyWriter))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        await response.BodyWriter.FlushAsync(_context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>A client may ask for a shorter deadline than the server's (X-Deadline-Ms, as on the ranking path), never a longer one.</summary>
}
