using System.Globalization;
using System.Text.Json;

namespace Recsys.Cli.Bench.Reporting;

/// <summary>
/// The two outputs of every mode: one JSON document for machines (field names are a contract:
/// qps, samples_per_s, p50, p95, p99, p999 in ms, requests, errors by status) and an aligned
/// table for people.
/// </summary>
public static class ReportWriter
{
    /// <summary>Writes a load result's fields into the currently open JSON object.</summary>
    public static void WriteLoadFields(Utf8JsonWriter json, LoadResult r)
    {
        json.WriteNumber("target_qps", Round(r.TargetQps));
        json.WriteNumber("qps", Round(r.Qps));
        json.WriteNumber("offered_qps", Round(r.OfferedQps));
        json.WriteNumber("samples_per_s", Round(r.SamplesPerSecond));
        json.WriteNumber("lookups_per_s", Round(r.LookupsPerSecond));
        json.WriteNumber("duration_s", Round(r.OfferedSeconds));
        json.WriteNumber("requests", r.Scheduled);
        json.WriteNumber("sent", r.Sent);
        json.WriteNumber("ok", r.Ok);
        json.WriteNumber("error_count", r.ErrorCount);
        json.WriteStartObject("errors");
        foreach ((string status, long count) in r.Errors) json.WriteNumber(status, count);
        json.WriteEndObject();
        json.WriteNumber("dropped_by_client", r.DroppedByClient);
        WriteLatency(json, r.Latency);
        json.WriteNumber("client_lag_p50_ms", Round(r.ClientLag.P50));
        json.WriteNumber("client_lag_p99_ms", Round(r.ClientLag.P99));
        json.WriteNumber("client_cpu_s", Round(r.ClientCpuSeconds));
        json.WriteNumber("client_cpu_us_per_request", Round(r.ClientCpuMicrosPerRequest));
        if (r.Server is { } s) WriteServer(json, s, r.AnsweredSeconds);
        else json.WriteNull("server");
    }

    public static void WriteLatency(Utf8JsonWriter json, LatencySummary l)
    {
        json.WriteNumber("p50", Round(l.P50));
        json.WriteNumber("p95", Round(l.P95));
        json.WriteNumber("p99", Round(l.P99));
        json.WriteNumber("p999", Round(l.P999));
        json.WriteNumber("mean_ms", Round(l.Mean));
        json.WriteNumber("max_ms", Round(l.Max));
    }

    private static void WriteServer(Utf8JsonWriter json, ServerBreakdown s, double seconds)
    {
        json.WriteStartObject("server");
        json.WriteStartObject("stages");
        foreach (StageDelta stage in s.Stages)
        {
            json.WriteStartObject(stage.Stage);
            json.WriteNumber("count", stage.Count);
            json.WriteNumber("mean_ms", Round(stage.MeanMs));
            if (double.IsFinite(stage.P99UpperMs)) json.WriteNumber("p99_le_ms", Round(stage.P99UpperMs));
            else json.WriteString("p99_le_ms", "+Inf");
            json.WriteEndObject();
        }
        json.WriteEndObject();
        json.WriteStartObject("requests");
        foreach ((string status, long count) in s.RequestsByStatus) json.WriteNumber(status, count);
        json.WriteEndObject();
        json.WriteNumber("samples", s.Samples);
        json.WriteNumber("batches", s.Batches);
        json.WriteNumber("mean_batch_samples", Round(s.MeanBatchSamples));
        json.WriteNumber("shard_calls", s.ShardCalls);
        json.WriteNumber("local_shard_reads", s.LocalShardReads);
        json.WriteNumber("lookup_bytes_sent", s.LookupBytesSent);
        json.WriteNumber("lookup_bytes_received", s.LookupBytesReceived);
        json.WriteNumber("lookup_wire_bytes_per_s", Round(seconds > 0 ? (s.LookupBytesSent + s.LookupBytesReceived) / seconds : 0));
        json.WriteNumber("cache_hits", s.CacheHits);
        json.WriteNumber("cache_misses", s.CacheMisses);
        json.WriteEndObject();
    }

    /// <summary>The human table of one load result, two columns.</summary>
    public static void WriteLoadTable(TextWriter o, LoadResult r)
    {
        Row(o, "target qps", F(r.TargetQps));
        Row(o, "achieved qps", $"{F(r.Qps)}  (offered {F(r.OfferedQps)})");
        Row(o, "samples/s", F(r.SamplesPerSecond));
        Row(o, "lookups/s", F(r.LookupsPerSecond));
        Row(o, "measured", $"{F(r.OfferedSeconds, "0.0")} s");
        Row(o, "requests", $"{r.Scheduled} = ok {r.Ok} + errors {r.ErrorCount} + dropped by client {r.DroppedByClient}");
        if (r.ErrorCount > 0) Row(o, "errors", string.Join(", ", r.Errors.Select(e => $"{e.Key}: {e.Value}")));
        LatencySummary l = r.Latency;
        Row(o, "latency ms", $"p50 {F(l.P50, "0.000")}  p95 {F(l.P95, "0.000")}  p99 {F(l.P99, "0.000")}  p99.9 {F(l.P999, "0.000")}  max {F(l.Max, "0.000")}");
        Row(o, "client lag ms", $"p50 {F(r.ClientLag.P50, "0.000")}  p99 {F(r.ClientLag.P99, "0.000")}  (scheduled instant -> send, inside the latencies above)");
        Row(o, "client cpu", $"{F(r.ClientCpuSeconds, "0.00")} s, {F(r.ClientCpuMicrosPerRequest, "0")} us per request sent");
        if (r.Server is not { } s)
        {
            Row(o, "server", "no /metrics delta (endpoint unreachable)");
            return;
        }
        foreach (StageDelta stage in s.Stages)
        {
            string p99 = double.IsFinite(stage.P99UpperMs) ? F(stage.P99UpperMs, "0.###") : "+Inf";
            Row(o, $"server {stage.Stage}", $"mean {F(stage.MeanMs, "0.000")} ms  p99 <= {p99} ms  ({stage.Count} obs)");
        }
        Row(o, "server batches", $"{s.Batches}, mean {F(s.MeanBatchSamples, "0.0")} samples");
        Row(o, "shard calls", $"{s.ShardCalls}, lookup bytes sent {Bytes(s.LookupBytesSent)}, received {Bytes(s.LookupBytesReceived)}; {s.LocalShardReads} shard reads in place");
        long reads = s.CacheHits + s.CacheMisses;
        if (reads > 0) Row(o, "shard cache", $"hit ratio {F((double)s.CacheHits / reads, "0.0000")} ({s.CacheHits} hits, {s.CacheMisses} misses)");
    }

    public static void Row(TextWriter o, string name, string value) => o.WriteLine($"{name,-18} {value}");

    public static string F(double v, string format = "0.0") => v.ToString(format, CultureInfo.InvariantCulture);

    public static string Bytes(double b) => b switch
    {
        >= 1e9 => F(b / 1e9, "0.00") + " GB",
        >= 1e6 => F(b / 1e6, "0.00") + " MB",
        >= 1e3 => F(b / 1e3, "0.00") + " kB",
        _ => F(b, "0") + " B",
    };

    private static double Round(double v) => double.IsFinite(v) ? Math.Round(v, 4) : 0;
}
