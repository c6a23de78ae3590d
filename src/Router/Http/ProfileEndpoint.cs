using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Builder;
using Recsys.DenseCompute.Characterization;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Profiling;
using Recsys.Router.Hosting;
using Recsys.Router.Repository;
using Recsys.Router.Workloads;

namespace Recsys.Router.Http;

/// <summary>
/// GET /v1/models/{name}/profile[?batch=1,16]: the characterization `recsys characterize --json`
/// prints, of the version this server serves. It runs the model's forward passes on this machine,
/// so it competes with serving for the same cores: it needs the admin API key, one profile runs at
/// a time (409 while another runs), batch sizes and iterations are capped, and the machine limits are
/// BASELINES.md's rather than probed (a probe streams 256 MiB per core for seconds).
/// ONNX models are profiled on their served files through ONNX Runtime's profiler. A DLRM's served
/// tables live in shard grains, which have no per-operator timers; the profile loads an in-process
/// copy of the version's tables from the model directory (refused above <see cref="MaxInProcessTableBytes"/>)
/// and times our kernels on it, as `recsys characterize` does.
/// </summary>
public static class ProfileEndpoint
{
    public const int MaxBatches = 4;
    public const int MaxBatch = 1024;
    public const long MaxInProcessTableBytes = 1L << 30;

    /// <summary>Short: a profile borrows serving cores.</summary>
    public static readonly MeasureSettings Settings = new(MaxIterations: 50, MinIterations: 5, Warmup: 2, BudgetSeconds: 0.5);

    private static readonly SemaphoreSlim OneAtATime = new(1, 1);

    public static void Map(IEndpointRouteBuilder app) => app.MapGet("/v1/models/{name}/profile", ProfileAsync);

    private static async Task ProfileAsync(HttpContext context, string name, ModelRegistry registry, WorkloadRegistry workloads, ServeOptions options)
    {
        if (!RecsysEndpoints.Authorized(context.Request, options.ApiKey))
        {
            await ApiErrors.WriteAsync(context, 401, "X-Api-Key", options.ApiKey is null
                ? "admin endpoints are disabled (start the server with --api-key); a profile runs the model on the serving cores"
                : "missing or wrong API key (send it in the X-Api-Key header); a profile runs the model on the serving cores").ConfigureAwait(false);
            return;
        }
        string? version = registry.Current.FirstOrDefault(m => m.Name == name)?.Version ?? (workloads.TryGet(name, out IServedWorkload w) ? w.Version : null);
        if (version is null)
        {
            await ApiErrors.WriteAsync(context, 404, "name", $"model '{name}' is not served").ConfigureAwait(false);
            return;
        }
        if (!TryParseBatches(context.Request.Query["batch"].ToString(), out int[] batches, out string? problem))
        {
            await ApiErrors.WriteAsync(context, 400, "batch", problem!).ConfigureAwait(false);
            return;
        }
        if (!await OneAtATime.WaitAsync(0, context.RequestAborted).ConfigureAwait(false))
        {
            await ApiErrors.WriteAsync(context, 409, "name", "another profile is running; profiles run one at a time beside serving", TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            return;
        }
        try
        {
            string directory = registry.Repository.VersionDirectory(name, version);
            string? refusal = TooLargeToCopy(directory);
            if (refusal is not null)
            {
                await ApiErrors.WriteAsync(context, 422, "name", refusal).ConfigureAwait(false);
                return;
            }
            // Off the request thread: the passes take up to a second or two per batch size.
            string json = await Task.Run(() =>
            {
                using OpenedProfiler opened = ModelProfilers.Open(directory, name);
                return CharacterizationJson.Serialize(Characterizer.Run(opened.Profiler, batches, MachineLimits.Baselines, Settings));
            }, context.RequestAborted).ConfigureAwait(false);
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(json, context.RequestAborted).ConfigureAwait(false);
        }
        catch (ModelFileException e)
        {
            await ApiErrors.WriteAsync(context, 422, e.Field, e.Message).ConfigureAwait(false);
        }
        finally
        {
            OneAtATime.Release();
        }
    }

    /// <summary>A DLRM whose tables would need more than <see cref="MaxInProcessTableBytes"/> beside the served copy.</summary>
    private static string? TooLargeToCopy(string directory)
    {
        ModelSpec spec = ModelSpec.Load(Path.Combine(directory, "model.json"));
        if (spec.Dlrm is not { } dlrm) return null;
        long bytes = dlrm.Tables.Sum(t => t.Rows * (long)t.RowBytes);
        return bytes <= MaxInProcessTableBytes ? null
            : $"its tables take {bytes / (1 << 20)} MiB; the profile would load a second copy beside the shards (limit {MaxInProcessTableBytes / (1 << 20)} MiB): run `recsys characterize` offline";
    }

    /// <summary>"1,16": distinct positive batch sizes, at most <see cref="MaxBatches"/>, each at most <see cref="MaxBatch"/>; empty means batch 1.</summary>
    public static bool TryParseBatches(string? text, out int[] batches, out string? problem)
    {
        batches = [1];
        problem = null;
        if (string.IsNullOrWhiteSpace(text)) return true;
        var list = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int b) || b <= 0 || b > MaxBatch)
            {
                problem = $"'{part}' is not a batch size in 1..{MaxBatch} (e.g. ?batch=1,16)";
                return false;
            }
            if (list.Contains(b))
            {
                problem = $"{b} given twice";
                return false;
            }
            list.Add(b);
        }
        if (list.Count > MaxBatches)
        {
            problem = $"{list.Count} batch sizes; a profile beside serving measures at most {MaxBatches}";
            return false;
        }
        batches = [.. list];
        return true;
    }
}
