namespace Recsys.Cli.Bench.Reporting;

/// <summary>One server stage over the run: how many observations, their mean, and the bucket bound holding the 99th percentile.</summary>
public sealed record StageDelta(string Stage, long Count, double MeanMs, double P99UpperMs);

/// <summary>
/// What the server itself reported for the model between the scrapes before and after the run
/// (its /metrics counters, subtracted). Metric names are the router's (src/Router/Metrics).
/// </summary>
public sealed record ServerBreakdown(
    IReadOnlyList<StageDelta> Stages,
    IReadOnlyDictionary<string, long> RequestsByStatus,
    long Samples,
    long Batches,
    double MeanBatchSamples,
    long ShardCalls,
    long LookupBytesSent,
    long LookupBytesReceived,
    long CacheHits,
    long CacheMisses)
{
    /// <summary>Lookup bytes (sent, received) per embedding silo that answered, when the server reports them.</summary>
    public IReadOnlyList<(string Silo, long Sent, long Received)> BytesBySilo { get; init; } = [];

    /// <summary>Shard lookups the front end pooled in place on its own silo (no grain call, no bytes on the wire).</summary>
    public long LocalShardReads { get; init; }

    public static ServerBreakdown Between(PrometheusSnapshot before, PrometheusSnapshot after, string model)
    {
        var m = ("model", model);
        long Delta(string name, params (string, string)[] extra) => (long)Math.Round(after.Sum(name, [m, .. extra]) - before.Sum(name, [m, .. extra]));

        var stages = new List<StageDelta>();
        foreach (string stage in after.LabelValues("recsys_stage_seconds_count", "stage", m))
        {
            var s = ("stage", stage);
            long count = Delta("recsys_stage_seconds_count", s);
            double sum = after.Sum("recsys_stage_seconds_sum", m, s) - before.Sum("recsys_stage_seconds_sum", m, s);
            stages.Add(new StageDelta(stage, count, count == 0 ? 0 : sum / count * 1000, P99Upper(before, after, m, s) * 1000));
        }
        var statuses = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (string status in after.LabelValues("recsys_requests_total", "status", m))
        {
            long d = Delta("recsys_requests_total", ("status", status));
            if (d != 0) statuses[status] = d;
        }
        long batches = Delta("recsys_batch_samples_count");
        double batchSum = after.Sum("recsys_batch_samples_sum", m) - before.Sum("recsys_batch_samples_sum", m);
        return new ServerBreakdown(
            stages,
            statuses,
            Delta("recsys_samples_total"),
            batches,
            batches == 0 ? 0 : batchSum / batches,
            Delta("recsys_shard_calls_total"),
            Delta("recsys_lookup_bytes_sent_total"),
            Delta("recsys_lookup_bytes_received_total"),
            Delta("recsys_shard_cache_hits_total"),
            Delta("recsys_shard_cache_misses_total"))
        {
            LocalShardReads = Delta("recsys_local_shard_reads_total"),
            BytesBySilo = [.. after.LabelValues("recsys_lookup_silo_bytes_sent_total", "silo", m).Select(silo =>
                (silo, Delta("recsys_lookup_silo_bytes_sent_total", ("silo", silo)), Delta("recsys_lookup_silo_bytes_received_total", ("silo", silo))))],
        };
    }

    /// <summary>Prometheus buckets only bound a percentile: the smallest "le" whose delta count covers 99%.</summary>
    private static double P99Upper(PrometheusSnapshot before, PrometheusSnapshot after, params (string, string)[] match)
    {
        SortedDictionary<double, double> a = after.Buckets("recsys_stage_seconds", match), b = before.Buckets("recsys_stage_seconds", match);
        if (a.Count == 0) return 0;
        double total = a[a.Keys.Max()] - b.GetValueOrDefault(a.Keys.Max());
        if (total <= 0) return 0;
        foreach ((double bound, double count) in a)
        {
            if (count - b.GetValueOrDefault(bound) >= 0.99 * total) return bound;
        }
        return double.PositiveInfinity;
    }
}
