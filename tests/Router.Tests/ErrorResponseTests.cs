using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Seq2Seq;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Batching;
using Recsys.Router.Http;
using Recsys.Router.Repository;
using Recsys.Router.Scheduling;
using Recsys.Router.Serving;

namespace Recsys.Router.Tests;

/// <summary>
/// The one exception-to-answer mapping of ranking, vision and translation: each exception type
/// gets its status, field, Retry-After and Connection header, and the JSON body names the field.
/// </summary>
public sealed class ErrorResponseTests
{
    private static readonly TimeSpan Budget = TimeSpan.FromMilliseconds(250);

    /// <summary>Failed with time to spare, the client still there.</summary>
    private const string InTime = "in time";

    private const string PastDeadline = "past its deadline";

    /// <summary>The deadline token is linked to the client's: both fire when the client leaves.</summary>
    private const string ClientLeft = "client left";

    private static RequestTime When(string when) => when switch
    {
        InTime => new(Budget, TimeSpan.FromMilliseconds(10), DeadlinePassed: false, ClientGone: false),
        PastDeadline => new(Budget, TimeSpan.FromMilliseconds(260), DeadlinePassed: true, ClientGone: false),
        _ => new(Budget, TimeSpan.FromMilliseconds(10), DeadlinePassed: true, ClientGone: true),
    };

    /// <summary>Case label, exception, the request's time, then the expected status, field (null: no body), Retry-After header (null: none), Connection: close, start of the error text.</summary>
    public static TheoryData<string, Exception, string, int, string?, string?, bool, string> Cases => new()
    {
        { "bad field", new InvalidRequestException("dense[0][1]", "is NaN"), InTime, 400, "dense[0][1]", null, false, "dense[0][1]: is NaN" },
        { "id out of range", new InvalidRequestException("sparse.C1[0][0]", "id 90 is outside [0, 20)", 422), InTime, 422, "sparse.C1[0][0]", null, false, "sparse.C1[0][0]: id 90" },
        { "media type", new InvalidRequestException("Content-Type", "'text/plain' is not supported", 415), InTime, 415, "Content-Type", null, false, "Content-Type: 'text/plain'" },
        { "image too large", new VisionInputException("image", "4000x4000 is over max_pixels", 413), InTime, 413, "image", null, false, "image: 4000x4000" },
        { "unknown version", new ModelNotFoundException("version", "model 'dot' has no version 9"), InTime, 404, "version", null, false, "version: model 'dot' has no version 9" },
        { "ranking queue full", new QueueFullException("dot", 1024), InTime, 429, "model", "1", false, "model: model 'dot' has 1024 requests queued" },
        { "decode queue full", new DecodeQueueFullException("64 translation requests are already waiting"), InTime, 429, "model", "1", false, "model: 64 translation" },
        { "scheduler refused, time left", new SchedulerRejectedException("resnext", "refused: expected to finish late", TimeSpan.FromMilliseconds(2500)), InTime, 503, "model", "3", false, "model: model 'resnext': refused" },
        { "scheduler refused, under a second", new SchedulerRejectedException("resnext", "refused", TimeSpan.FromMilliseconds(200)), InTime, 503, "model", "1", false, "model: model 'resnext'" },
        { "scheduler dropped it at its deadline", new SchedulerRejectedException("dot", "its deadline passed while it waited", TimeSpan.FromSeconds(1)), PastDeadline, 504, "deadline", null, true, "deadline: not answered within 250 ms" },
        { "shard unreachable", new ShardUnavailableException("dot/1/C1/0", 3, new TimeoutException("no answer")), InTime, 503, "shard", "1", false, "shard: embedding shard dot/1/C1/0 unavailable after 3" },
        { "deadline", new OperationCanceledException(), PastDeadline, 504, "deadline", null, true, "deadline: not answered within 250 ms; the request was dropped" },
        { "deadline as task cancelled", new TaskCanceledException(), PastDeadline, 504, "deadline", null, true, "deadline: not answered" },
        { "client gone", new OperationCanceledException(), ClientLeft, 499, null, null, false, "" },
        { "cancelled by nobody", new OperationCanceledException("stray"), InTime, 500, "server", null, false, "server: OperationCanceledException: stray" },
        { "Kestrel refused the body", new BadHttpRequestException("Request body too large.", 413), InTime, 413, "body", null, false, "body: Request body too large." },
        { "unexpected", new InvalidOperationException("boom"), InTime, 500, "server", null, false, "server: InvalidOperationException: boom" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_exception_gets_its_status_headers_and_a_body_naming_the_field(
        string label, Exception error, string when, int status, string? field, string? retryAfter, bool close, string text)
    {
        ErrorResponse answer = ErrorResponse.For(error, When(when));
        Assert.True(status == answer.Status, $"{label}: status {answer.Status}, expected {status}");
        Assert.Equal(field, answer.Field);

        var context = new DefaultHttpContext();
        var body = new MemoryStream();
        context.Response.Body = body;
        Assert.Equal(status, await answer.WriteAsync(context));

        HttpResponse response = context.Response;
        if (field is null)
        {
            // 499: the client is gone, nothing is written.
            Assert.Equal(0, body.Length);
            return;
        }
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/json", response.ContentType);
        Assert.Equal(retryAfter, retryAfter is null && response.Headers.RetryAfter.Count == 0 ? null : response.Headers.RetryAfter.ToString());
        Assert.Equal(close, response.Headers.Connection.ToString() == "close");
        JsonNode json = JsonNode.Parse(body.ToArray())!;
        Assert.Equal(field, json["field"]!.GetValue<string>());
        Assert.Equal(status, json["status"]!.GetValue<int>());
        Assert.StartsWith(text, json["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.StartsWith(field + ":", json["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_answer_already_started_is_left_alone()
    {
        var context = new DefaultHttpContext();
        var started = new StartedResponse();
        context.Features.Set<Microsoft.AspNetCore.Http.Features.IHttpResponseFeature>(started);

        int status = await ErrorResponse.For(new OperationCanceledException(), When(PastDeadline)).WriteAsync(context);

        // Counted as 504, but neither the status nor Connection can change once the 200 went out.
        Assert.Equal(504, status);
        Assert.Equal(200, started.StatusCode);
        Assert.Empty(started.Headers);
    }

    /// <summary>A response whose headers went out: HasStarted is true and the headers are read-only, as Kestrel's are.</summary>
    private sealed class StartedResponse : Microsoft.AspNetCore.Http.Features.HttpResponseFeature
    {
        public StartedResponse() => Headers = new HeaderDictionary { IsReadOnly = true };

        public override bool HasStarted => true;
    }
}
