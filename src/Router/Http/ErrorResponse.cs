using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Seq2Seq;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Batching;
using Recsys.Router.Repository;
using Recsys.Router.Scheduling;
using Recsys.Router.Serving;

namespace Recsys.Router.Http;

/// <summary>
/// The answer to an API request that failed: its status, the field it names, the message,
/// Retry-After, and whether the connection must close. <see cref="For"/> is the one mapping from
/// exception to answer that ranking, vision and translation share, so the same failure gets the
/// same status on every endpoint.
/// </summary>
/// <param name="Field">The field the JSON body names; null for 499, which writes no body (nobody reads it).</param>
internal readonly record struct ErrorResponse(int Status, string? Field, string Message, TimeSpan? RetryAfter = null, bool CloseConnection = false)
{
    /// <summary>The client closed the connection before the answer (nginx's 499): counted, never written.</summary>
    public const int ClientClosedRequest = 499;

    private static readonly TimeSpan OneSecond = TimeSpan.FromSeconds(1);

    public static ErrorResponse For(Exception error, RequestTime time) => error switch
    {
        InvalidRequestException e => new(e.Status, e.Field, e.Message),
        VisionInputException e => new(e.Status, e.Field, e.Message),
        ModelNotFoundException e => new(404, e.Field, e.Message),
        QueueFullException or DecodeQueueFullException => new(429, "model", error.Message, OneSecond),
        // Refused because its time was already up (the scheduler drops expired work): a deadline
        // answer, not overload, whichever endpoint's work the scheduler held.
        SchedulerRejectedException when time.Elapsed >= time.Budget => DeadlinePassed(time.Budget),
        SchedulerRejectedException e => new(503, "model", e.Message, e.RetryAfter),
        ShardUnavailableException e => new(503, "shard", e.Message, OneSecond),
        // Checked before the deadline: the deadline token is linked to the client's, so both fire when the client leaves.
        OperationCanceledException when time.ClientGone => new(ClientClosedRequest, null, "the client closed the request"),
        OperationCanceledException when time.DeadlinePassed => DeadlinePassed(time.Budget),
        BadHttpRequestException e => new(e.StatusCode, "body", e.Message),
        _ => new(500, "server", $"{error.GetType().Name}: {error.Message}"),
    };

    /// <summary>
    /// 504. The deadline may have cut the body read short, so the connection cannot carry another
    /// request: it closes.
    /// </summary>
    public static ErrorResponse DeadlinePassed(TimeSpan budget) =>
        new(504, "deadline", $"not answered within {budget.TotalMilliseconds:0} ms; the request was dropped", CloseConnection: true);

    /// <summary>
    /// Maps <paramref name="error"/>, writes the answer, and logs it under <paramref name="source"/>'s
    /// category when it is unexpected (500). Returns the status for the request metrics.
    /// </summary>
    /// <param name="endpoint">The endpoint family the log line names: "ranking", "vision", "translation".</param>
    public static Task<int> AnswerAsync(HttpContext context, Exception error, RequestClock clock, Type source, string endpoint, string model)
    {
        ErrorResponse answer = For(error, clock.Now);
        if (answer.Status == 500)
        {
            // Resolved only here: a request served outside the host (a test's bare context) has no services, and needs none until a 500.
            ILogger? logger = context.RequestServices?.GetService<ILoggerFactory>()?.CreateLogger(source);
            logger?.LogError(error, "{Endpoint} request for model {Model} failed", endpoint, model);
        }
        return answer.WriteAsync(context);
    }

    /// <summary>Writes the JSON error body (and Retry-After, Connection: close) unless the answer has started; returns the status.</summary>
    public async Task<int> WriteAsync(HttpContext context)
    {
        if (Field is null) return Status;
        if (CloseConnection && !context.Response.HasStarted) context.Response.Headers.Connection = "close";
        await ApiErrors.WriteAsync(context, Status, Field, Message, RetryAfter).ConfigureAwait(false);
        return Status;
    }
}
