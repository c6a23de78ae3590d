using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Recsys.OnnxModels.Seq2Seq;
using Recsys.Router.Hosting;
using Recsys.Router.Http;
using Recsys.Router.Scheduling;
using Recsys.Router.Workloads;

namespace Recsys.Router.Translation;

/// <summary>One served seq2seq model version: translate through its decode batch, KServe /infer on its encoder.</summary>
internal sealed class TranslationWorkload : IServedWorkload
{
    private readonly DecodeDriver _driver;
    private readonly ComputeScheduler _scheduler;
    private readonly ServeOptions _options;

    public TranslationWorkload(string name, string version, Seq2SeqModel model, ComputeScheduler scheduler, ServeOptions options)
    {
        Name = name;
        Version = version;
        Model = model;
        _scheduler = scheduler;
        _options = options;
        _driver = new DecodeDriver(model.CreateBatch(), scheduler, name);
    }

    public string Name { get; }
    public string Version { get; }
    public string Kind => Seq2SeqSpec.Kind;
    public Seq2SeqModel Model { get; }

    /// <summary>Queues one checked source on the decode batch.</summary>
    public Task<DecodeResult> TranslateAsync(int[] source, DecodeOptions options, long deadline, CancellationToken cancel) =>
        _driver.Submit(source, options, deadline, cancel);

    /// <summary>The encoder graph's inputs and outputs, as the raw /infer serves it.</summary>
    public JsonObject Metadata() => new()
    {
        ["platform"] = "onnxruntime_onnx",
        ["inputs"] = KServeTensors.Metadata(Model.Graphs.EncoderInputSignatures),
        ["outputs"] = KServeTensors.Metadata(Model.Graphs.EncoderOutputSignatures),
    };

    public Task InferAsync(HttpContext context) => EncoderInfer.ServeAsync(context, this, _scheduler, _options);

    public async ValueTask DisposeAsync()
    {
        await _driver.StopAsync(_options.Deadline).ConfigureAwait(false);
        Model.Dispose();
    }
}
