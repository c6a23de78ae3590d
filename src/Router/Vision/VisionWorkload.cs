using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Hosting;
using Recsys.Router.Http;
using Recsys.Router.Metrics;
using Recsys.Router.Scheduling;
using Recsys.Router.Workloads;

namespace Recsys.Router.Vision;

/// <summary>
/// A served vision model: its graph's KServe metadata, /infer, and the queue every request of every
/// endpoint goes through. Graph runs happen only in that queue's scheduler units (best-effort class),
/// never on a request thread.
/// </summary>
internal sealed class VisionWorkload : IServedWorkload
{
    private readonly BatchQueue<GraphRequest, GraphOutcome> _queue;
    private int _inFlight;
    private volatile bool _retired;

    public VisionWorkload(string name, string version, string kind, VisionModel model, ComputeScheduler scheduler, ServeOptions options, ServingMetrics metrics)
    {
        Name = name;
        Version = version;
        Kind = kind;
        Model = model;
        Options = options;
        Metrics = metrics;
        _queue = scheduler.CreateQueue<GraphRequest, GraphOutcome>(name, WorkClass.BestEffort, new BatchLimits(model.Spec.MaxBatch, model.Spec.MaxDelay), model.RunBatch);
    }

    public string Name { get; }
    public string Version { get; }
    public string Kind { get; }
    public VisionModel Model { get; }
    public ServeOptions Options { get; }
    public ServingMetrics Metrics { get; }

    public JsonObject Metadata() => new()
    {
        ["platform"] = Model.Platform,
        ["inputs"] = KServeTensors.Metadata(Model.Inputs),
        ["outputs"] = KServeTensors.Metadata(Model.Outputs),
    };

    /// <summary>Queues one request's tensors (already checked) and waits for its own outputs.</summary>
    public async Task<IReadOnlyDictionary<string, HostTensor>> RunAsync(GraphRequest request, VisionCall call)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            if (_retired) throw new SchedulerRejectedException(Name, "a new version is replacing this one", TimeSpan.FromSeconds(1));
            GraphOutcome outcome = await _queue.SubmitAsync(request, call.DeadlineTimestamp, call.Cancel).WaitAsync(call.Cancel).ConfigureAwait(false);
            return outcome.Get();
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    public Task InferAsync(HttpContext context) => VisionCall.ServeAsync(context, this, async call =>
    {
        RequireJson(context.Request);
        using RequestBody body = await RequestBody.ReadAsync(context.Request, Options.MaxBodyBytes, call.Cancel).ConfigureAwait(false);
        KServeRequest request = KServeTensors.ReadRequest(body.Memory, Model.Inputs, Model.Outputs);
        Model.CheckInputs(request.Inputs, n => $"inputs[{n}].shape");
        IReadOnlyDictionary<string, HostTensor> outputs = await RunAsync(new GraphRequest(request.Inputs, request.Outputs), call).ConfigureAwait(false);
        IEnumerable<string> order = request.Outputs ?? Model.Outputs.Select(o => o.Name);
        await call.WriteJsonAsync(w =>
        {
            w.WriteString("model_name", Name);
            w.WriteString("model_version", Version);
            if (request.Id is not null) w.WriteString("id", request.Id);
            KServeTensors.WriteOutputs(w, order.Select(n => (n, outputs[n])));
        }).ConfigureAwait(false);
    });

    internal static void RequireJson(HttpRequest request)
    {
        string? type = request.ContentType;
        if (string.IsNullOrEmpty(type)) return;
        string media = type.Split(';', 2)[0].Trim();
        if (!media.Equals("application/json", StringComparison.OrdinalIgnoreCase)) throw new InvalidRequestException("Content-Type", $"'{type}' is not supported (send application/json)", 415);
    }

    /// <summary>Stops taking requests, lets the queued ones finish, then closes the session (a reload must not pull a graph from under a running batch).</summary>
    public async ValueTask DisposeAsync()
    {
        _retired = true;
        long until = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 30;
        while (Volatile.Read(ref _inFlight) > 0 && Stopwatch.GetTimestamp() < until) await Task.Delay(10).ConfigureAwait(false);
        Model.Dispose();
    }
}
