using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Recsys.Cli.Bench.Reporting;
using Recsys.Cli.Bench.Workload;
using Recsys.DenseCompute.Models;

namespace Recsys.Cli.Bench;

/// <summary>What `recsys bench memory` adds per step and how it loads each step.</summary>
public sealed record MemoryPlan(
    string ModelsDirectory, string ApiKey, DemoPreset Preset, double Scale, int Steps, string Prefix,
    LoadPlan Load, SizeDistribution Sizes, string Ids, int DistinctBodies);

/// <summary>One step: the models held after it, and the newest model's service while the silo is that full.</summary>
public sealed record MemoryStep(
    int Step, string Model, long ModelRows, long RowBytes, long TotalRows, long ResidentRows, long ResidentBytes,
    double ModelResidentFraction, double ModelHitRate, LoadResult Load)
{
    /// <summary>Rows served per GB of row memory in use: above 1e9 / RowBytes once rows live on disk.</summary>
    public double RowsPerResidentGb => ResidentBytes > 0 ? TotalRows / (ResidentBytes / 1e9) : 0;
}

/// <summary>
/// Fills the embedding silos step by step: each step writes one more demo model into the
/// server's repository, asks the server to load it (admin endpoint), then drives ranking load at
/// it alone. Earlier models stay loaded and keep their memory grants, so once the silos' budget is
/// spent the new model's shards keep only a hot-row cache in memory and read the rest from FASTER:
/// the steps show rows held per GB, the cache hit rate and p99 as rows move to disk.
/// </summary>
public static class MemoryCapacity
{
    public static async Task<IReadOnlyList<MemoryStep>> RunAsync(MemoryPlan plan, Uri baseUri, HttpClient http, ProgressLine? progress, TextWriter log, CancellationToken cancel)
    {
        var steps = new List<MemoryStep>();
        var repository = new ModelRepository(plan.ModelsDirectory);
        for (int k = 1; k <= plan.Steps && !cancel.IsCancellationRequested; k++)
        {
            string name = $"{plan.Prefix}-{k}";
            string dir = repository.VersionDirectory(name, "1");
            if (!File.Exists(Path.Combine(dir, "model.json")))
            {
                log.WriteLine($"step {k}: writing {plan.Preset.Name} x {plan.Scale} to {dir}");
                DemoModel.Write(dir, plan.Preset, plan.Scale, seed: (ulong)(41 + k));
            }
            log.WriteLine($"step {k}: loading {name} on the server");
            await LoadAsync(baseUri, name, plan.ApiKey, cancel).ConfigureAwait(false);

            DlrmSpec spec = repository.LoadSpec(name, "1").RequireDlrm();
            WorkloadShape shape = WorkloadShape.FromSpec(name, spec);
            var pool = new RequestPool(shape, plan.Sizes, plan.Ids, WireFormat.Json, plan.DistinctBodies, plan.Load.Seed + (ulong)k);
            var driver = new OpenLoopDriver(http, new Uri(baseUri, $"v1/models/{Uri.EscapeDataString(name)}/rank"), new Uri(baseUri, "metrics"), name, pool);
            PrometheusSnapshot before = await ScrapeAsync(http, baseUri, cancel).ConfigureAwait(false);
            LoadResult load = await driver.RunAsync(plan.Load, progress, $"step {k} ({name})", cancel).ConfigureAwait(false);
            progress?.Finish();
            PrometheusSnapshot after = await ScrapeWithShardStatsAsync(http, baseUri, [.. Enumerable.Range(1, k).Select(j => $"{plan.Prefix}-{j}")], cancel).ConfigureAwait(false);

            // Cache counters include the warm-up: the hit rate is over everything this model served.
            double hits = after.Sum("recsys_shard_cache_hits_total", ("model", name)) - before.Sum("recsys_shard_cache_hits_total", ("model", name));
            double misses = after.Sum("recsys_shard_cache_misses_total", ("model", name)) - before.Sum("recsys_shard_cache_misses_total", ("model", name));
            long modelRows = (long)after.Sum("recsys_shard_rows", ("model", name));
            long modelResident = (long)after.Sum("recsys_shard_resident_rows", ("model", name));
            long rowBytes = spec.Tables[0].RowBytes;
            long totalRows = 0, residentRows = 0, residentBytes = 0;
            for (int j = 1; j <= k; j++)
            {
                string m = $"{plan.Prefix}-{j}";
                long rows = (long)after.Sum("recsys_shard_resident_rows", ("model", m));
                totalRows += (long)after.Sum("recsys_shard_rows", ("model", m));
                residentRows += rows;
                residentBytes += rows * rowBytes;
            }
            steps.Add(new MemoryStep(k, name, modelRows, rowBytes, totalRows, residentRows, residentBytes,
                modelRows > 0 ? (double)modelResident / modelRows : double.NaN, hits + misses > 0 ? hits / (hits + misses) : double.NaN, load));
            if (load.Ok == 0) break;
        }
        return steps;
    }

    private static async Task LoadAsync(Uri baseUri, string name, string apiKey, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUri, $"v1/models/{Uri.EscapeDataString(name)}/load"));
        request.Headers.Add("X-Api-Key", apiKey);
        // Loading activates every shard: minutes for big steps, far past a ranking timeout.
        using var admin = new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
        using HttpResponseMessage response = await admin.SendAsync(request, cancel).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            string body = await response.Content.ReadAsStringAsync(cancel).ConfigureAwait(false);
            string detail = JsonNode.Parse(body)?["error"]?.GetValue<string>() ?? body;
            throw new FormatException($"loading {name} on the server failed: HTTP {(int)response.StatusCode}: {detail}");
        }
        _ = await response.Content.ReadFromJsonAsync<JsonObject>(cancel).ConfigureAwait(false);
    }

    /// <summary>
    /// The server drops a model's shard statistics from a scrape when its shards do not answer
    /// within 2 s (busy with disk reads): scrape again until every model reports, or give up
    /// after a minute and report what is missing as unknown.
    /// </summary>
    private static async Task<PrometheusSnapshot> ScrapeWithShardStatsAsync(HttpClient http, Uri baseUri, string[] models, CancellationToken cancel)
    {
        PrometheusSnapshot snapshot = await ScrapeAsync(http, baseUri, cancel).ConfigureAwait(false);
        for (int attempt = 0; attempt < 20 && models.Any(m => snapshot.Sum("recsys_shard_rows", ("model", m)) <= 0); attempt++)
        {
            await Task.Delay(TimeSpan.FromSeconds(3), cancel).ConfigureAwait(false);
            snapshot = await ScrapeAsync(http, baseUri, cancel).ConfigureAwait(false);
        }
        return snapshot;
    }

    private static async Task<PrometheusSnapshot> ScrapeAsync(HttpClient http, Uri baseUri, CancellationToken cancel) =>
        PrometheusSnapshot.Parse(await http.GetStringAsync(new Uri(baseUri, "metrics"), cancel).ConfigureAwait(false));
}
