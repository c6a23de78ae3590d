using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.ML.OnnxRuntime;
using Recsys.Router.Http;
using Recsys.Router.Metrics;

namespace Recsys.Router.Vision;

/// <summary>
/// One vision request: its deadline (the server's, or a shorter X-Deadline-Ms) and its
/// cancellation. Its failures become JSON errors naming the field through the mapping every
/// endpoint shares (<see cref="ErrorResponse"/>); the server keeps serving whatever a request sends.
/// </summary>
internal sealed class VisionCall
{
    private readonly HttpContext _context;
    private readonly RequestClock _clock;

    private VisionCall(HttpContext context, RequestClock clock)
    {
        _context = context;
        _clock = clock;
    }

    public CancellationToken Cancel => _clock.Token;

    /// <summary>Stopwatch timestamp the scheduler orders and refuses by.</summary>
    public long DeadlineTimestamp => _clock.DeadlineTimestamp;

    public static async Task ServeAsync(HttpContext context, VisionWorkload model, Func<VisionCall, Task> handle)
    {
        int status = 200;
        using var clock = new RequestClock(context, model.Options.Deadline);
        try
        {
            clock.Arm();
            await handle(new VisionCall(context, clock)).ConfigureAwait(false);
            model.Metrics.For(model.Name).Observe(Stage.Total, clock.Elapsed);
        }
        catch (OnnxRuntimeException e)
        {
            // The request passed the graph's declared types and shapes, yet the graph refused it
            // (an image too small for its pooling, say): the input's fault, and only this request's.
            // Vision only: a translation graph runs a whole decode batch, where a refusal is the server's.
            status = await new ErrorResponse(422, "inputs", $"the model could not run this input: {e.Message}").WriteAsync(context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            status = await ErrorResponse.AnswerAsync(context, e, clock, typeof(VisionWorkload), "vision", model.Name).ConfigureAwait(false);
        }
        finally
        {
            model.Metrics.For(model.Name).CountRequest(status);
        }
    }

    /// <summary>The 200 answer: a JSON object with the fields <paramref name="fields"/> writes.</summary>
    public Task WriteJsonAsync(Action<Utf8JsonWriter> fields) =>
        JsonAnswer.WriteAsync(_context, fields, static (writer, write) => write(writer), _context.RequestAborted);
}
