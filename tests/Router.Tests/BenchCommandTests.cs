using System.Text.Json;
using Recsys.Cli;
using Recsys.Cli.Commands;

namespace Recsys.Router.Tests;

/// <summary>
/// `recsys bench` end to end against the shared in-process cluster, briefly and far from
/// saturation (tens of tiny requests per second): the reports must be self-consistent. No
/// assertion on how fast anything is, only on what the numbers must satisfy whatever the speed.
/// </summary>
[Collection(RouterClusterCollection.Name)]
public sealed class BenchCommandTests(RouterCluster cluster)
{
    private string Url => cluster.Primary.Address.ToString();

    private static async Task<JsonElement> RunJsonAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await BenchCommand.RunAsync([.. args, "--json"], stdout, stderr, CancellationToken.None);
        Assert.True(code == 0, $"exit {code}: {stderr}");
        using JsonDocument doc = JsonDocument.Parse(stdout.ToString());
        return doc.RootElement.Clone();
    }

    /// <summary>The invariants every network report must satisfy.</summary>
    private static void AssertConsistent(JsonElement r)
    {
        long requests = r.GetProperty("requests").GetInt64();
        long sent = r.GetProperty("sent").GetInt64();
        long ok = r.GetProperty("ok").GetInt64();
        long dropped = r.GetProperty("dropped_by_client").GetInt64();
        long errors = r.GetProperty("errors").EnumerateObject().Sum(e => e.Value.GetInt64());
        Assert.Equal(errors, r.GetProperty("error_count").GetInt64());
        Assert.Equal(sent, ok + errors);
        Assert.Equal(requests, sent + dropped);
        double p50 = r.GetProperty("p50").GetDouble(), p95 = r.GetProperty("p95").GetDouble(), p99 = r.GetProperty("p99").GetDouble(), p999 = r.GetProperty("p999").GetDouble();
        Assert.True(p50 > 0 && p50 <= p95 && p95 <= p99 && p99 <= p999 && p999 <= r.GetProperty("max_ms").GetDouble(), $"percentiles out of order: {p50} {p95} {p99} {p999}");
        Assert.True(r.GetProperty("qps").GetDouble() > 0);
        Assert.True(r.GetProperty("samples_per_s").GetDouble() >= r.GetProperty("qps").GetDouble());
    }

    [Fact]
    public async Task Load_far_from_saturation_achieves_the_target_rate_with_a_consistent_report()
    {
        JsonElement r = await RunJsonAsync("load", "--url", Url, "--model", "dot", "--models", cluster.ModelsDirectory,
            "--qps", "50", "--duration", "4s", "--warmup", "1s", "--batch-dist", "fixed:4", "--ids", "zipf:0.99", "--quiet");

        AssertConsistent(r);
        Assert.Equal("load", r.GetProperty("mode").GetString());
        Assert.Equal(0, r.GetProperty("error_count").GetInt64());
        Assert.Equal(0, r.GetProperty("dropped_by_client").GetInt64());
        // The seeded Poisson schedule puts ~200 arrivals in the 4 s window (the count varies by ~7%
        // between seeds): offered QPS is a property of the schedule, hence the tight band. Achieved
        // QPS also spans the wait for the last answer, which a stall of the shared machine can
        // stretch, so its band is wider below; it can never exceed the offered rate.
        double offered = r.GetProperty("offered_qps").GetDouble(), achieved = r.GetProperty("qps").GetDouble();
        Assert.InRange(offered, 50 * 0.8, 50 * 1.2);
        Assert.InRange(achieved, 50 * 0.6, offered);
        // Every ok request carried exactly 4 samples.
        Assert.Equal(4 * r.GetProperty("qps").GetDouble(), r.GetProperty("samples_per_s").GetDouble(), 1);
        JsonElement server = r.GetProperty("server");
        Assert.True(server.GetProperty("stages").GetProperty("total").GetProperty("count").GetInt64() > 0);
        Assert.True(server.GetProperty("lookup_bytes_sent").GetInt64() > 0);
        Assert.Equal(JsonValueKind.Null, r.GetProperty("plot").ValueKind);
    }

    [Fact]
    public async Task Load_stops_at_max_requests_and_msgpack_bodies_are_answered()
    {
        JsonElement r = await RunJsonAsync("load", "--url", Url, "--model", "weighted", "--models", cluster.ModelsDirectory,
            "--qps", "100", "--duration", "60s", "--warmup", "0s", "--max-requests", "40", "--format", "msgpack", "--batch-dist", "lognormal:4,2", "--quiet");

        AssertConsistent(r);
        Assert.Equal(40, r.GetProperty("requests").GetInt64());
        Assert.Equal(40, r.GetProperty("ok").GetInt64());
        Assert.True(r.GetProperty("duration_s").GetDouble() < 30, "the request limit did not stop the run");
    }

    [Fact]
    public async Task Capacity_reports_the_highest_passing_step_and_its_curve()
    {
        string plot = Path.Combine(Path.GetTempPath(), $"bench-capacity-{Guid.NewGuid():N}.svg");
        JsonElement r = await RunJsonAsync("capacity", "--url", Url, "--model", "dot", "--models", cluster.ModelsDirectory,
            "--start-qps", "20", "--max-qps", "80", "--step-duration", "1500ms", "--warmup", "300ms", "--max-steps", "3",
            "--sla-ms", "2000", "--batch-dist", "fixed:2", "--plot", plot, "--quiet");

        AssertConsistent(r);
        JsonElement[] steps = [.. r.GetProperty("steps").EnumerateArray()];
        Assert.InRange(steps.Length, 1, 3);
        foreach (JsonElement step in steps) AssertConsistent(step);
        double[] passed = [.. steps.Where(s => s.GetProperty("pass").GetBoolean()).Select(s => s.GetProperty("target_qps").GetDouble())];
        Assert.Equal(passed.Length == 0 ? 0 : passed.Max(), r.GetProperty("max_qps").GetDouble());
        // The ramp doubles from the start rate and never offers more than --max-qps.
        Assert.Equal(20, steps[0].GetProperty("target_qps").GetDouble());
        Assert.All(steps, s => Assert.True(s.GetProperty("target_qps").GetDouble() <= 80));
        Assert.Equal(plot, r.GetProperty("plot").GetString());
        Assert.Contains("<svg", File.ReadAllText(plot), StringComparison.Ordinal);
        File.Delete(plot);
    }

    [Fact]
    public async Task Bandwidth_rows_per_second_are_samples_times_lookups_per_sample()
    {
        JsonElement r = await RunJsonAsync("bandwidth", "--url", Url, "--model", "mean", "--models", cluster.ModelsDirectory,
            "--qps", "20,40", "--duration", "1500ms", "--warmup", "300ms", "--lookups", "5", "--batch-dist", "fixed:3", "--quiet");

        AssertConsistent(r);
        Assert.Equal(2, r.GetProperty("steps").GetArrayLength());
        long lookupsPerSample = r.GetProperty("lookups_per_sample").GetInt64();
        Assert.Equal(5 * 3, lookupsPerSample);
        Assert.Equal(r.GetProperty("samples_per_s").GetDouble() * lookupsPerSample, r.GetProperty("rows_per_s").GetDouble(), 0);
        // fp32 rows of the mean fixture: dim floats of 4 bytes each.
        Assert.True(r.GetProperty("pooled_gb_per_s").GetDouble() > 0);
        Assert.True(r.GetProperty("lookup_wire_gb_per_s").GetDouble() > 0);
    }

    [Fact]
    public async Task Offline_scores_the_given_number_of_batches_and_splits_the_stages()
    {
        string plot = Path.Combine(Path.GetTempPath(), $"bench-offline-{Guid.NewGuid():N}.png");
        JsonElement r = await RunJsonAsync("offline", "--models", cluster.ModelsDirectory, "--model", "dot",
            "--input", Path.Combine(RouterCluster.FixtureDirectory("dot"), "request.json"), "--threads", "2", "--max-requests", "300", "--duration", "60s",
            "--plot", plot, "--quiet");

        Assert.Equal(300, r.GetProperty("requests").GetInt64());
        int batch = r.GetProperty("batch").GetInt32();
        Assert.Equal(JsonDocument.Parse(File.ReadAllText(Path.Combine(RouterCluster.FixtureDirectory("dot"), "request.json"))).RootElement.GetProperty("dense").GetArrayLength(), batch);
        // Both figures are printed rounded: compare within their printed precision, not to the unit.
        Assert.Equal(r.GetProperty("qps").GetDouble() * batch, r.GetProperty("samples_per_s").GetDouble(), tolerance: 0.001 * r.GetProperty("samples_per_s").GetDouble());
        double fractions = r.GetProperty("stages").EnumerateObject().Sum(s => s.Value.GetProperty("fraction").GetDouble());
        Assert.Equal(1.0, fractions, 2);
        double p50 = r.GetProperty("p50").GetDouble(), p99 = r.GetProperty("p99").GetDouble(), p999 = r.GetProperty("p999").GetDouble();
        Assert.True(p50 > 0 && p50 <= p99 && p99 <= p999);
        byte[] png = File.ReadAllBytes(plot);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        File.Delete(plot);
    }

    [Theory]
    [InlineData("http://10.1.2.3:8080")]
    [InlineData("http://example.com")]
    public async Task Non_loopback_urls_are_refused_without_allow_remote(string url)
    {
        var e = await Assert.ThrowsAsync<CliException>(() => BenchCommand.RunAsync(["load", "--url", url, "--model", "dot", "--rows", "10"], TextWriter.Null, TextWriter.Null, CancellationToken.None));
        Assert.Contains("--allow-remote", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--duration", "soon")]
    [InlineData("--batch-dist", "gamma:1")]
    [InlineData("--ids", "zipf:0")]
    [InlineData("--plot", "chart.gif")]
    public async Task Bad_options_name_the_option(string option, string value)
    {
        var e = await Assert.ThrowsAsync<CliException>(() => BenchCommand.RunAsync(["load", "--model", "dot", "--rows", "10", option, value], TextWriter.Null, TextWriter.Null, CancellationToken.None));
        Assert.Contains(value, e.Message, StringComparison.Ordinal);
    }
}
