using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Recsys.Router.Workloads;

/// <summary>
/// A served model of a kind other than DLRM (classification, detection, video, seq2seq). Ranking
/// keeps its own path (ModelRegistry, batcher, shard fan-out); every other kind comes through here.
/// </summary>
public interface IServedWorkload : IAsyncDisposable
{
    string Name { get; }
    string Version { get; }

    /// <summary>The model.json kind.</summary>
    string Kind { get; }

    /// <summary>KServe v2 model metadata (name, versions are added by the caller): platform, inputs, outputs.</summary>
    JsonObject Metadata();

    /// <summary>POST /v2/models/{name}/infer: reads the body and writes the answer, errors as JSON naming the field.</summary>
    Task InferAsync(HttpContext context);
}
