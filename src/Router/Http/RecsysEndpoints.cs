using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.Router.Hosting;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;
using Recsys.Router.Scheduling;
using Recsys.Router.Workloads;

namespace Recsys.Router.Http;

/// <summary>The HTTP surface: ranking (v1), the KServe v2 protocol, admin and Prometheus metrics.</summary>
public static class RecsysEndpoints
{
    /// <summary>Health and metrics: every role answers these.</summary>
    public static void MapHealth(IEndpointRouteBuilder app)
    {
        app.MapGet("/v2/health/live", () => Json(new JsonObject { ["live"] = true }));
        app.MapGet("/metrics", async (HttpContext context, ServingMetrics metrics, IServiceProvider services) =>
        {
            ModelRegistry? registry = services.GetService<ModelRegistry>();
            IReadOnlyList<ShardCacheStats> shards = registry is null ? [] : await registry.CacheStatsAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            return Results.Text(PrometheusText.Write(metrics, shards, services.GetService<ComputeScheduler>()?.Metrics), PrometheusText.ContentType);
        });
    }

    /// <summary>Everything a front end serves.</summary>
    public static void MapFrontend(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/models/{name}/rank", (HttpContext context, string name, RankHandler handler) => handler.RankAsync(context, name));
        app.MapPost("/v1/models/{name}/load", LoadAsync);
        Translation.TranslationEndpoints.Map(app);
        app.MapGet("/v1/models", (ModelRegistry registry, WorkloadRegistry workloads) =>
        {
            var models = new JsonArray();
            foreach (ServedModel m in registry.Current) models.Add(ListEntry(registry.Repository, m.Name, m.Version, ModelKinds.Dlrm));
            foreach (IServedWorkload w in workloads.Current) models.Add(ListEntry(registry.Repository, w.Name, w.Version, w.Kind));
            return Json(new JsonObject { ["models"] = models });
        });

        app.MapGet("/v2/health/ready", (ModelRegistry registry, WorkloadRegistry workloads) =>
            registry.IsReady && workloads.IsReady ? Json(new JsonObject { ["ready"] = true }) : Json(new JsonObject { ["ready"] = false }, 503));
        app.MapGet("/v2/models/{name}", (string name, ModelRegistry registry, WorkloadRegistry workloads) =>
            workloads.TryGet(name, out IServedWorkload w) ? WorkloadMetadata(w, registry.Repository) : Metadata(name, registry));
        app.MapGet("/v2/models/{name}/versions/{version}", (string name, string version, ModelRegistry registry, WorkloadRegistry workloads) =>
            workloads.TryGet(name, out IServedWorkload w) ? WorkloadMetadata(w, registry.Repository, version) : Metadata(name, registry, version));
        app.MapGet("/v2/models/{name}/ready", (string name, ModelRegistry registry, WorkloadRegistry workloads) =>
            registry.Current.Any(m => m.Name == name) || workloads.TryGet(name, out _)
                ? Json(new JsonObject { ["name"] = name, ["ready"] = true })
                : Error(404, "name", $"model '{name}' is not served"));
        app.MapPost("/v2/models/{name}/infer", (HttpContext context, string name, RankHandler handler, WorkloadRegistry workloads) =>
            workloads.TryGet(name, out IServedWorkload w) ? w.InferAsync(context) : handler.InferAsync(context, name, null));
        app.MapPost("/v2/models/{name}/versions/{version}/infer", (HttpContext context, string name, string version, RankHandler handler, WorkloadRegistry workloads) =>
            workloads.TryGet(name, out IServedWorkload w) ? WorkloadInferAsync(context, w, version) : handler.InferAsync(context, name, version));
        Vision.VisionEndpoints.Map(app);
        ProfileEndpoint.Map(app);
    }

    private static JsonObject ListEntry(ModelRepository repository, string name, string version, string kind) => new()
    {
        ["name"] = name,
        ["version"] = version,
        ["kind"] = kind,
        ["versions"] = new JsonArray(repository.Versions(name).Select(v => (JsonNode)v!).ToArray()),
    };

    /// <summary>Workloads serve only their newest version: a pinned older one is refused by name.</summary>
    private static Task WorkloadInferAsync(HttpContext context, IServedWorkload model, string version) =>
        version == model.Version
            ? model.InferAsync(context)
            : ApiErrors.WriteAsync(context, 404, "version", $"model '{model.Name}' serves version {model.Version} only, not '{version}'");

    private static IResult WorkloadMetadata(IServedWorkload model, ModelRepository repository, string? version = null)
    {
        if (version is not null && version != model.Version) return Error(404, "version", $"model '{model.Name}' serves version {model.Version} only, not '{version}'");
        JsonObject metadata = model.Metadata();
        metadata["name"] = model.Name;
        metadata["versions"] = new JsonArray(repository.Versions(model.Name).Select(v => (JsonNode)v!).ToArray());
        metadata["kind"] = model.Kind;
        return Json(metadata);
    }

    private static async Task<IResult> LoadAsync(HttpContext context, string name, ModelRegistry registry, ServeOptions options)
    {
        if (!Authorized(context.Request, options.ApiKey))
        {
            return Error(401, "X-Api-Key", options.ApiKey is null
                ? "admin endpoints are disabled (start the server with --api-key)"
                : "missing or wrong API key (send it in the X-Api-Key header)");
        }
        if (!ModelRepository.IsSafeName(name) || registry.Repository.NewestVersion(name) is null)
        {
            return Error(404, "name", $"model '{name}' has no version under {registry.Repository.Root}");
        }
        if (!ModelKinds.IsDlrm(registry.Repository, name))
        {
            WorkloadRegistry workloads = context.RequestServices.GetRequiredService<WorkloadRegistry>();
            string? before = workloads.TryGet(name, out IServedWorkload current) ? current.Version : null;
            try
            {
                IServedWorkload loaded = await workloads.LoadNewestAsync(name, context.RequestAborted).ConfigureAwait(false);
                return Json(new JsonObject { ["model"] = name, ["version"] = loaded.Version, ["previous"] = before });
            }
            catch (ModelFileException e)
            {
                return Error(422, e.Field, e.Message);
            }
        }
        string? previous = registry.Current.FirstOrDefault(m => m.Name == name)?.Version;
        try
        {
            ServedModel loaded = await registry.LoadNewestAsync(name, cancel: context.RequestAborted).ConfigureAwait(false);
            return Json(new JsonObject { ["model"] = name, ["version"] = loaded.Version, ["previous"] = previous });
        }
        catch (ModelFileException e)
        {
            return Error(422, e.Field, e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The new version failed to load (often in a shard activation): the old one keeps serving.
            return Error(500, "model", $"loading the newest version of '{name}' failed, the previous version keeps serving: {e.Message}");
        }
    }

    internal static bool Authorized(HttpRequest request, string? key)
    {
        if (key is null) return false;
        string? sent = request.Headers["X-Api-Key"].FirstOrDefault();
        if (sent is null && request.Headers.Authorization.FirstOrDefault() is { } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal)) sent = auth[7..];
        return sent is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(sent), Encoding.UTF8.GetBytes(key));
    }

    private static IResult Metadata(string name, ModelRegistry registry, string? version = null)
    {
        ServedModel? model = registry.Current.FirstOrDefault(m => m.Name == name);
        if (model is null) return Error(404, "name", $"model '{name}' is not served");
        IReadOnlyList<string> versions = registry.Repository.Versions(name);
        if (version is not null && !versions.Contains(version)) return Error(404, "version", $"model '{name}' has no version '{version}'");
        DlrmSpec spec = version is null || version == model.Version ? model.Spec : registry.Repository.LoadSpec(name, version).RequireDlrm();
        var inputs = new JsonArray { Tensor("dense", "FP32", -1, spec.DenseFeatures) };
        foreach (TableSpec t in spec.Tables)
        {
            inputs.Add(Tensor(t.Name + ".indices", "INT64", -1));
            inputs.Add(Tensor(t.Name + ".offsets", "INT64", -1));
        }
        return Json(new JsonObject
        {
            ["name"] = name,
            ["versions"] = new JsonArray(versions.Select(v => (JsonNode)v!).ToArray()),
            ["platform"] = "recsys_dlrm",
            ["inputs"] = inputs,
            ["outputs"] = new JsonArray { spec.Events == 1 ? Tensor("scores", "FP32", -1) : Tensor("scores", "FP32", -1, spec.Events) },
            // Beyond the protocol: what a load generator needs to draw valid, realistic ids.
            ["parameters"] = new JsonObject
            {
                ["tables"] = new JsonArray([.. spec.Tables.Select(t => (JsonNode)new JsonObject
                {
                    ["name"] = t.Name,
                    ["rows"] = t.Rows,
                    ["dim"] = t.Dim,
                    ["lookups"] = t.Lookups,
                    ["shards"] = t.Shards,
                    ["storage"] = RowLayout.Name(t.Storage),
                    ["row_bytes"] = t.RowBytes,
                    ["pooling"] = t.Pooling.ToString().ToLowerInvariant(),
                })]),
            },
        });
    }

    private static JsonObject Tensor(string name, string datatype, params long[] shape) => new()
    {
        ["name"] = name,
        ["datatype"] = datatype,
        ["shape"] = new JsonArray(shape.Select(s => (JsonNode)s).ToArray()),
    };

    private static IResult Json(JsonNode node, int status = 200) => Results.Text(node.ToJsonString(), "application/json", Encoding.UTF8, status);

    private static IResult Error(int status, string field, string message) =>
        Json(new JsonObject { ["error"] = $"{field}: {message}", ["field"] = field, ["status"] = status }, status);
}
