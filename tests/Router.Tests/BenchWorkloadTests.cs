using Recsys.Cli.Bench.Reporting;
using Recsys.Cli.Bench.Workload;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.Router.Http;
using Recsys.Router.Metrics;

namespace Recsys.Router.Tests;

/// <summary>Generated bodies against the server's own parsers, and /metrics deltas against the server's own text writer.</summary>
public sealed class BenchWorkloadTests
{
    private static DlrmSpec Spec(string fixture) => ModelSpec.Load(Path.Combine(RouterCluster.FixtureDirectory(fixture), "model.json")).RequireDlrm();

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MessagePack)]
    public void Generated_bodies_parse_with_the_servers_readers_into_the_drawn_shape(WireFormat format)
    {
        DlrmSpec spec = Spec("dot");
        WorkloadShape shape = WorkloadShape.FromSpec("dot", spec, lookupsOverride: 3);
        var pool = new RequestPool(shape, SizeDistribution.Parse("normal:6,3", 4096), "zipf:0.99", format, 20, seed: 5);

        Assert.Equal(20, pool.Requests.Count);
        Assert.True(pool.Requests.Select(r => r.Samples).Distinct().Count() > 1, "sizes were not drawn per body");
        foreach (BenchRequest request in pool.Requests)
        {
            RankBatch batch = format == WireFormat.Json
                ? JsonRankBody.Parse(request.Body, spec, 4096)
                : MessagePackRankReader.Parse(request.Body, spec, 4096);
            Assert.Equal(request.Samples, batch.Batch);
            Assert.Equal(request.Samples * spec.DenseFeatures, batch.Dense.Length);
            Assert.Equal(request.Samples * 3L * spec.Tables.Length, request.Lookups);
            for (int t = 0; t < spec.Tables.Length; t++)
            {
                SparseFeature f = batch.Sparse[t];
                Assert.Equal(request.Samples, f.Bags);
                for (int b = 0; b < f.Bags; b++) Assert.Equal(3, f.Offsets[b + 1] - f.Offsets[b]);
                Assert.All(f.Ids, id => Assert.InRange(id, 0, spec.Tables[t].Rows - 1));
            }
        }
    }

    [Fact]
    public void Same_seed_gives_the_same_bodies()
    {
        WorkloadShape shape = WorkloadShape.FromSpec("dot", Spec("dot"));
        byte[][] a = [.. new RequestPool(shape, SizeDistribution.Parse("lognormal:8,4", 64), "uniform", WireFormat.Json, 5, 9).Requests.Select(r => r.Body)];
        byte[][] b = [.. new RequestPool(shape, SizeDistribution.Parse("lognormal:8,4", 64), "uniform", WireFormat.Json, 5, 9).Requests.Select(r => r.Body)];
        Assert.Equal(a, b);
    }

    [Fact]
    public void Shape_from_kserve_metadata_takes_dense_width_and_table_names()
    {
        var metadata = System.Text.Json.Nodes.JsonNode.Parse("""
            {"name":"m","inputs":[{"name":"dense","datatype":"FP32","shape":[-1,13]},
             {"name":"C1.indices","datatype":"INT64","shape":[-1]},{"name":"C1.offsets","datatype":"INT64","shape":[-1]},
             {"name":"C2.indices","datatype":"INT64","shape":[-1]},{"name":"C2.offsets","datatype":"INT64","shape":[-1]}]}
            """)!;
        WorkloadShape shape = WorkloadShape.FromKServeMetadata("m", metadata, rows: 1000, lookups: 4);
        Assert.Equal(13, shape.DenseFeatures);
        Assert.Equal(["C1", "C2"], shape.Tables.Select(t => t.Name));
        Assert.All(shape.Tables, t => Assert.Equal((1000L, 4), (t.Rows, t.Lookups)));
        Assert.Equal(8, shape.LookupsPerSample);
        Assert.Equal(0, shape.PooledBytesPerSample);
    }

    [Fact]
    public void Metrics_delta_is_what_the_server_counted_between_two_scrapes()
    {
        var metrics = new ServingMetrics();
        ModelMetrics m = metrics.For("demo");
        metrics.For("other").CountBatch(1000);
        m.Observe(Stage.Total, TimeSpan.FromMilliseconds(3));
        m.CountRequest(200);
        m.CountShardCall(100, 1000);
        PrometheusSnapshot before = PrometheusSnapshot.Parse(PrometheusText.Write(metrics, []));

        for (int i = 0; i < 99; i++) m.Observe(Stage.Total, TimeSpan.FromMilliseconds(2));
        m.Observe(Stage.Total, TimeSpan.FromMilliseconds(40));
        m.Observe(Stage.Dense, TimeSpan.FromMilliseconds(1));
        for (int i = 0; i < 7; i++) m.CountRequest(200);
        m.CountRequest(429);
        m.CountBatch(32);
        m.CountBatch(64);
        m.CountShardCall(10, 20);
        m.CountShardCall(30, 40);
        metrics.For("other").CountBatch(5);
        PrometheusSnapshot after = PrometheusSnapshot.Parse(PrometheusText.Write(metrics, [new ShardCacheStats("demo", "1", 2, 100, 100, 90, 10)]));

        ServerBreakdown d = ServerBreakdown.Between(before, after, "demo");
        StageDelta total = d.Stages.Single(s => s.Stage == "total");
        Assert.Equal(100, total.Count);
        Assert.Equal((99 * 2 + 40) / 100.0, total.MeanMs, 2);
        // 99 of 100 observations are <= 2.5 ms, the bucket bound above 2 ms.
        Assert.Equal(2.5, total.P99UpperMs, 6);
        Assert.Equal(1, d.Stages.Single(s => s.Stage == "dense").Count);
        Assert.Equal(7, d.RequestsByStatus["200"]);
        Assert.Equal(1, d.RequestsByStatus["429"]);
        Assert.Equal(96, d.Samples);
        Assert.Equal(2, d.Batches);
        Assert.Equal(48, d.MeanBatchSamples, 6);
        Assert.Equal(2, d.ShardCalls);
        Assert.Equal(40, d.LookupBytesSent);
        Assert.Equal(60, d.LookupBytesReceived);
        Assert.Equal(90, d.CacheHits);
        Assert.Equal(10, d.CacheMisses);
    }

    [Fact]
    public void Lookup_bytes_split_by_the_silo_that_answered()
    {
        var metrics = new ServingMetrics();
        ModelMetrics m = metrics.For("demo");
        m.CountShardCall(5, 6, "S127.0.0.1:11111:1");
        PrometheusSnapshot before = PrometheusSnapshot.Parse(PrometheusText.Write(metrics, []));
        m.CountShardCall(10, 20, "S127.0.0.1:11111:1");
        m.CountShardCall(30, 40, "S127.0.0.1:11112:1");
        m.CountShardCall(50, 60, "S127.0.0.1:11111:1");
        m.CountShardCall(7, 8);
        PrometheusSnapshot after = PrometheusSnapshot.Parse(PrometheusText.Write(metrics, []));

        ServerBreakdown d = ServerBreakdown.Between(before, after, "demo");
        Assert.Equal([("S127.0.0.1:11111:1", 60L, 80L), ("S127.0.0.1:11112:1", 30L, 40L)], d.BytesBySilo);
        // The totals still count every call, including one whose silo was not known.
        Assert.Equal(97, d.LookupBytesSent);
        Assert.Equal(128, d.LookupBytesReceived);
    }

    [Fact]
    public void Prometheus_labels_with_escapes_parse()
    {
        PrometheusSnapshot s = PrometheusSnapshot.Parse("x{model=\"a\\\"b\",status=\"200\"} 5\nx{model=\"c\"} 1e3\n# HELP y\ny 2\n");
        Assert.Equal(5, s.Sum("x", ("model", "a\"b")));
        Assert.Equal(1000, s.Sum("x", ("model", "c")));
        Assert.Equal(1005, s.Sum("x"));
        Assert.Equal(2, s.Sum("y"));
        Assert.Equal(0, s.Sum("missing"));
    }
}
