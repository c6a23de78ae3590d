using System.Globalization;
using System.Text;

namespace Recsys.Router.Metrics;

/// <summary>Shard cache counters summed over one loaded model version's shards.</summary>
public sealed record ShardCacheStats(string Model, string Version, int Shards, long Rows, long ResidentRows, long CacheHits, long CacheMisses);

/// <summary>Writes the Prometheus text exposition format (version 0.0.4) by hand: no dependency for a few dozen lines.</summary>
public static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Write(ServingMetrics metrics, IEnumerable<ShardCacheStats> shards, SchedulerMetrics? scheduler = null)
    {
        var sb = new StringBuilder();
        List<ModelMetrics> models = metrics.Models.ToList();

        Header(sb, "recsys_requests_total", "counter", "Ranking requests answered, by HTTP status.");
        foreach (ModelMetrics m in models)
        {
            foreach ((int status, long count) in m.RequestsByStatus())
            {
                sb.Append("recsys_requests_total{model=\"").Append(Escape(m.Model)).Append("\",status=\"").Append(status).Append("\"} ").Append(count).Append('\n');
            }
        }

        Header(sb, "recsys_stage_seconds", "histogram", "Latency per ranking stage: queue, lookup, dense, total.");
        foreach (ModelMetrics m in models)
        {
            foreach (Stage stage in Enum.GetValues<Stage>())
            {
                Histogram(sb, "recsys_stage_seconds", $"model=\"{Escape(m.Model)}\",stage=\"{stage.ToString().ToLowerInvariant()}\"", m.StageHistogram(stage));
            }
        }

        Header(sb, "recsys_batch_samples", "histogram", "Samples per executed batch after dynamic batching.");
        foreach (ModelMetrics m in models) Histogram(sb, "recsys_batch_samples", $"model=\"{Escape(m.Model)}\"", m.BatchSize);

        Counter(sb, models, "recsys_samples_total", "Samples scored.", m => m.Samples);
        Counter(sb, models, "recsys_shard_calls_total", "Embedding shard grain calls (one per touched shard per batch).", m => m.ShardCalls);
        Counter(sb, models, "recsys_local_shard_reads_total", "Shard lookups pooled in place on this silo (resident shards co-hosted with the front end): no grain call, no bytes on the wire.", m => m.LocalShardReads);
        Counter(sb, models, "recsys_silo_lookup_calls_total", "Lookup messages to an embedding silo's shard host (one per silo per batch, carrying all its shards' slices).", m => m.SiloCalls);
        Counter(sb, models, "recsys_direct_shard_calls_total", "Slices sent straight to their shard (its silo unknown, or the only slice on its silo).", m => m.DirectShardCalls);
        Counter(sb, models, "recsys_silo_lookup_fallbacks_total", "Silo lookup messages that failed; their slices were sent again per shard.", m => m.SiloFallbacks);
        Counter(sb, models, "recsys_silo_lookup_hedges_total", "Silo lookup messages so slow that their slices also went per shard alongside.", m => m.SiloHedges);
        Counter(sb, models, "recsys_fallback_shard_calls_total", "Per-shard calls made for failed or hedged silo lookup messages.", m => m.FallbackShardCalls);
        Counter(sb, models, "recsys_lookup_bytes_sent_total", "Bytes of ids, offsets and weights sent to shards.", m => m.BytesSent);
        Counter(sb, models, "recsys_lookup_bytes_received_total", "Bytes of pooled partial sums received from shards.", m => m.BytesReceived);
        ReplicaCalls(sb, models);
        Counter(sb, models, "recsys_replica_failovers_total", "Shard calls sent to a sibling replica because the replica asked first failed or did not answer in time.", m => m.ReplicaFailovers);
        SiloBytes(sb, models, "recsys_lookup_silo_bytes_sent_total", "Lookup bytes sent, by the embedding silo that answered.", b => b.Sent);
        SiloBytes(sb, models, "recsys_lookup_silo_bytes_received_total", "Lookup bytes received, by the embedding silo that answered.", b => b.Received);

        List<ShardCacheStats> stats = shards.ToList();
        Header(sb, "recsys_shard_rows", "gauge", "Rows held by the model's shards.");
        foreach (ShardCacheStats s in stats) Gauge(sb, "recsys_shard_rows", s, s.Rows);
        Header(sb, "recsys_shard_resident_rows", "gauge", "Rows held in the shards' in-memory cache.");
        foreach (ShardCacheStats s in stats) Gauge(sb, "recsys_shard_resident_rows", s, s.ResidentRows);
        Header(sb, "recsys_shard_cache_hits_total", "counter", "Row reads served by the shard cache.");
        foreach (ShardCacheStats s in stats) Gauge(sb, "recsys_shard_cache_hits_total", s, s.CacheHits);
        Header(sb, "recsys_shard_cache_misses_total", "counter", "Row reads that went to FASTER.");
        foreach (ShardCacheStats s in stats) Gauge(sb, "recsys_shard_cache_misses_total", s, s.CacheMisses);
        Header(sb, "recsys_shard_cache_hit_ratio", "gauge", "Cache hits / (hits + misses) since the shards activated.");
        foreach (ShardCacheStats s in stats)
        {
            long reads = s.CacheHits + s.CacheMisses;
            Gauge(sb, "recsys_shard_cache_hit_ratio", s, reads == 0 ? 1.0 : (double)s.CacheHits / reads);
        }
        if (scheduler is not null) WriteScheduler(sb, scheduler);
        return sb.ToString();
    }

    /// <summary>The compute scheduler: per model (and class) queue depth, batch sizes, wait and run time, refusals; busy time per class.</summary>
    private static void WriteScheduler(StringBuilder sb, SchedulerMetrics scheduler)
    {
        List<SchedulerModelMetrics> models = scheduler.Models.ToList();
        Header(sb, "recsys_scheduler_workers", "gauge", "Units the compute scheduler runs at once.");
        sb.Append("recsys_scheduler_workers ").Append(scheduler.Workers).Append('\n');
        Header(sb, "recsys_scheduler_busy_seconds_total", "counter", "Worker seconds spent per class.");
        foreach ((string cls, double seconds) in scheduler.BusySeconds())
        {
            sb.Append("recsys_scheduler_busy_seconds_total{class=\"").Append(cls).Append("\"} ").Append(Number(seconds)).Append('\n');
        }
        Header(sb, "recsys_scheduler_queue_depth", "gauge", "Items queued on the scheduler, not yet running.");
        foreach (SchedulerModelMetrics m in models) sb.Append("recsys_scheduler_queue_depth{").Append(Labels(m)).Append("} ").Append(m.QueueDepth).Append('\n');
        Header(sb, "recsys_scheduler_batch_items", "histogram", "Items per unit run by the scheduler.");
        foreach (SchedulerModelMetrics m in models) Histogram(sb, "recsys_scheduler_batch_items", Labels(m), m.BatchSize);
        Header(sb, "recsys_scheduler_wait_seconds", "histogram", "Per item: from submission to the start of its unit.");
        foreach (SchedulerModelMetrics m in models) Histogram(sb, "recsys_scheduler_wait_seconds", Labels(m), m.Wait);
        Header(sb, "recsys_scheduler_run_seconds", "histogram", "Per unit: how long it held a worker.");
        foreach (SchedulerModelMetrics m in models) Histogram(sb, "recsys_scheduler_run_seconds", Labels(m), m.Run);
        Header(sb, "recsys_scheduler_items_total", "counter", "Items run, by outcome (ok, failed: the model threw).");
        foreach (SchedulerModelMetrics m in models)
        {
            sb.Append("recsys_scheduler_items_total{").Append(Labels(m)).Append(",outcome=\"ok\"} ").Append(m.Completed).Append('\n');
            sb.Append("recsys_scheduler_items_total{").Append(Labels(m)).Append(",outcome=\"failed\"} ").Append(m.Failed).Append('\n');
        }
        Header(sb, "recsys_scheduler_refusals_total", "counter", "Items answered without running: refused at admission, expired while queued, or shut down.");
        foreach (SchedulerModelMetrics m in models)
        {
            foreach (Refusal reason in Enum.GetValues<Refusal>())
            {
                sb.Append("recsys_scheduler_refusals_total{").Append(Labels(m)).Append(",reason=\"").Append(reason.ToString().ToLowerInvariant()).Append("\"} ")
                  .Append(m.Refused(reason)).Append('\n');
            }
        }
    }

    private static string Labels(SchedulerModelMetrics m) => $"model=\"{Escape(m.Model)}\",class=\"{m.Class}\"";

    /// <summary>Per replica of every replicated shard: the spread of the front end's least-outstanding choice.</summary>
    private static void ReplicaCalls(StringBuilder sb, List<ModelMetrics> models)
    {
        Header(sb, "recsys_replica_calls_total", "counter", "Lookup calls sent to each replica of a replicated table's shard (tables with replicas >= 2 only).");
        foreach (ModelMetrics m in models)
        {
            foreach ((string table, int shard, int replica, long calls) in m.ReplicaCallCounts())
            {
                sb.Append("recsys_replica_calls_total{model=\"").Append(Escape(m.Model)).Append("\",table=\"").Append(Escape(table))
                  .Append("\",shard=\"").Append(shard).Append("\",replica=\"").Append(replica).Append("\"} ").Append(calls).Append('\n');
            }
        }
    }

    private static void SiloBytes(StringBuilder sb, List<ModelMetrics> models, string name, string help, Func<(string Silo, long Sent, long Received), long> value)
    {
        Header(sb, name, "counter", help);
        foreach (ModelMetrics m in models)
        {
            foreach (var silo in m.BytesBySilo())
            {
                sb.Append(name).Append("{model=\"").Append(Escape(m.Model)).Append("\",silo=\"").Append(Escape(silo.Silo)).Append("\"} ").Append(value(silo)).Append('\n');
            }
        }
    }

    private static void Header(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Counter(StringBuilder sb, List<ModelMetrics> models, string name, string help, Func<ModelMetrics, long> value)
    {
        Header(sb, name, "counter", help);
        foreach (ModelMetrics m in models) sb.Append(name).Append("{model=\"").Append(Escape(m.Model)).Append("\"} ").Append(value(m)).Append('\n');
    }

    private static void Gauge(StringBuilder sb, string name, ShardCacheStats s, double value) =>
        sb.Append(name).Append("{model=\"").Append(Escape(s.Model)).Append("\",version=\"").Append(Escape(s.Version)).Append("\"} ")
          .Append(Number(value)).Append('\n');

    private static void Histogram(StringBuilder sb, string name, string labels, LatencyHistogram h)
    {
        long[] cumulative = h.Cumulative();
        for (int i = 0; i < h.Bounds.Count; i++)
        {
            sb.Append(name).Append("_bucket{").Append(labels).Append(",le=\"").Append(Number(h.Bounds[i])).Append("\"} ").Append(cumulative[i]).Append('\n');
        }
        sb.Append(name).Append("_bucket{").Append(labels).Append(",le=\"+Inf\"} ").Append(cumulative[^1]).Append('\n');
        sb.Append(name).Append("_sum{").Append(labels).Append("} ").Append(Number(h.Sum)).Append('\n');
        sb.Append(name).Append("_count{").Append(labels).Append("} ").Append(h.Count).Append('\n');
    }

    private static string Number(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
