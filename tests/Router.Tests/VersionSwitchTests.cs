using System.Net;
using System.Text;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

[Collection(RouterClusterCollection.Name)]
public sealed class VersionSwitchTests(RouterCluster cluster)
{
    [Fact]
    public async Task Load_needs_the_api_key()
    {
        var (none, error, _) = await PostAsync(cluster.Http, $"/v1/models/{RouterCluster.SwapModel}/load", [], "application/json");
        var (wrong, _, _) = await PostAsync(cluster.Http, $"/v1/models/{RouterCluster.SwapModel}/load", [], "application/json", headers: new Dictionary<string, string> { ["X-Api-Key"] = "guess" });

        Assert.Equal(HttpStatusCode.Unauthorized, none);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong);
        Assert.Equal("X-Api-Key", error!["field"]!.GetValue<string>());
    }

    [Fact]
    public async Task Loading_a_new_version_switches_traffic_without_failing_requests_in_flight()
    {
        string path = $"/v1/models/{RouterCluster.SwapModel}/rank";
        string request = Request("dot");
        float[] fp32 = Expected("dot"), fp16 = Expected("dot", "fp16");
        // Version 2: the same network with fp16 rows; its scores are the fixture's fp16 column.
        cluster.WriteModel("dot", "2", [3, 1, 2], storage: "fp16", name: RouterCluster.SwapModel);

        using var stop = new CancellationTokenSource();
        var traffic = Enumerable.Range(0, 4).Select(async _ =>
        {
            var seen = new List<(HttpStatusCode, string, float[])>();
            while (!stop.IsCancellationRequested)
            {
                var (status, body, _) = await PostJsonAsync(cluster.Http, path, request);
                seen.Add((status, body?["version"]?.GetValue<string>() ?? "", body?["scores"] is { } s ? Flatten(s) : []));
            }
            return seen;
        }).ToArray();

        var (loadStatus, loaded, _) = await PostAsync(cluster.Http, $"/v1/models/{RouterCluster.SwapModel}/load", Encoding.UTF8.GetBytes("{}"), "application/json",
            headers: new Dictionary<string, string> { ["X-Api-Key"] = RouterCluster.ApiKey });
        var (afterStatus, after, _) = await PostJsonAsync(cluster.Http, path, request);
        await stop.CancelAsync();
        var seen = (await Task.WhenAll(traffic)).SelectMany(x => x).ToList();

        Assert.True(loadStatus == HttpStatusCode.OK, loaded?.ToJsonString());
        Assert.Equal("2", loaded!["version"]!.GetValue<string>());
        Assert.Equal("1", loaded["previous"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, afterStatus);
        Assert.Equal("2", after!["version"]!.GetValue<string>());
        AssertClose(fp16, Flatten(after["scores"]!), 2e-5f);
        Assert.NotEmpty(seen);
        foreach (var (status, version, scores) in seen)
        {
            Assert.Equal(HttpStatusCode.OK, status);
            AssertClose(version == "1" ? fp32 : fp16, scores, 2e-5f);
        }

        // A pinned request still reaches version 1 (loaded again on demand).
        var (pinnedStatus, pinned, _) = await PostJsonAsync(cluster.Http, path, request.Insert(1, "\"version\": \"1\", "));
        Assert.Equal(HttpStatusCode.OK, pinnedStatus);
        Assert.Equal("1", pinned!["version"]!.GetValue<string>());
        AssertClose(fp32, Flatten(pinned["scores"]!), 2e-5f);
    }
}
