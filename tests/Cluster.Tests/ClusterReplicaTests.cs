using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Recsys.EmbeddingGrains.Contracts;
using Xunit.Abstractions;

namespace Recsys.Cluster.Tests;

/// <summary>
/// Real processes on loopback (Redis, 2 embedding silos, 1 front end) with 2 replicas of every
/// shard: one replica of each shard on each embedding silo. Killing one embedding silo under load
/// fails no request: the front end retries each slice lost with the silo on the sibling replica at
/// once, within the request deadline.
/// </summary>
public sealed class ClusterReplicaTests(ITestOutputHelper log)
{
    private const int LoadRequests = 200;
    private const int LoadWorkers = 4;

    /// <summary>
    /// Consistent grain directory: with the default one, survivors' activations whose directory
    /// entries lived on the dead silo are deactivated too (the R = 1 kill test shows this), and both
    /// replicas of a shard could be gone at once; the consistent directory keeps them.
    /// </summary>
    [RedisFact]
    public async Task Killing_an_embedding_silo_under_load_fails_no_request_when_every_shard_has_two_replicas()
    {
        await using LoopbackCluster cluster = await LoopbackCluster.StartReplicatedAsync(log, 2, 2, "--grain-directory", "consistent");
        ScoredRequest[] requests = RankLoad.Requests(cluster.ModelDirectory, 40, seed: 6);
        await cluster.WarmUpAsync(requests);
        var check = Stopwatch.StartNew();
        // A few checked before the kill (the load checks every answer's scores anyway): the test's time is mostly process start-up.
        for (int i = 0; i < 10; i++)
        {
            RankOutcome o = await RankLoad.RankOnceAsync(cluster.Http, requests[i], i, check);
            Assert.True(o.Status == HttpStatusCode.OK && !o.WrongScores, RankLoad.Describe(o));
        }

        // Every shard: replica 0 and replica 1 on different embedding silos, so each silo holds one of each pair.
        Dictionary<string, ShardStatus> before = await ReplicaStatusAsync(cluster);
        Assert.Equal(2 * 3 * LoopbackCluster.ShardsPerTable, before.Count);
        foreach ((string key, ShardStatus r0) in before.Where(kv => ShardKey.ParseReplica(kv.Key).Replica == 0))
        {
            ShardStatus r1 = before[key + "/r1"];
            Assert.StartsWith("embedding-", cluster.HostOf(r0)?.Name ?? r0.Silo, StringComparison.Ordinal);
            Assert.StartsWith("embedding-", cluster.HostOf(r1)?.Name ?? r1.Silo, StringComparison.Ordinal);
            Assert.NotSame(cluster.HostOf(r0), cluster.HostOf(r1));
        }
        SiloProcess victim = cluster.Embedding[0];
        (long callsBefore, long failoversBefore) = await ReplicaMetricsAsync(cluster);

        var clock = Stopwatch.StartNew();
        TimeSpan killedAt = default;
        string loadAtKill = "";
        List<RankOutcome> outcomes = await RankLoad.RunAsync(cluster.Http, requests, LoadRequests, LoadWorkers, TimeSpan.FromMilliseconds(150), triggerAt: 30, () =>
        {
            killedAt = clock.Elapsed;
            victim.Kill();
            loadAtKill = LoadAverage();
            return Task.CompletedTask;
        }, clock);

        List<RankOutcome> failed = outcomes.Where(o => o.Status != HttpStatusCode.OK).ToList();
        List<RankOutcome> wrong = outcomes.Where(o => o.WrongScores).ToList();
        TimeSpan slowest = outcomes.Where(o => o.Sent >= killedAt).Select(o => o.Done - o.Sent).DefaultIfEmpty().Max();
        (long callsAfter, long failoversAfter) = await ReplicaMetricsAsync(cluster);
        log.WriteLine($"killed {victim.Name} (pid {victim.Pid}) at {killedAt.TotalMilliseconds:0} ms, load average {loadAtKill}; {outcomes.Count} requests over {clock.Elapsed.TotalSeconds:0.0} s: " +
            $"{failed.Count} failed, {wrong.Count} wrong scores; slowest answer after the kill {slowest.TotalMilliseconds:0} ms; " +
            $"replica calls {callsAfter - callsBefore}, failovers to a sibling {failoversAfter - failoversBefore}");
        foreach (RankOutcome f in failed.Concat(wrong).Take(10)) log.WriteLine("  failed " + RankLoad.Describe(f));

        Assert.Equal(LoadRequests, outcomes.Count);
        Assert.Empty(wrong);
        Assert.Empty(failed);
        // The front end saw the loss: half the replicas it chose first were on the victim.
        Assert.True(failoversAfter > failoversBefore, "no call failed over to a sibling replica: did the kill reach any replica the load used?");

        // Service stays whole: later requests still right, every replica answers (the victim's reactivated on the survivor).
        for (int i = 0; i < 10; i++)
        {
            RankOutcome o = await RankLoad.RankOnceAsync(cluster.Http, requests[i], i, clock);
            Assert.True(o.Status == HttpStatusCode.OK && !o.WrongScores, RankLoad.Describe(o));
        }
        Dictionary<string, ShardStatus> after = await ReplicaStatusAsync(cluster);
        Assert.All(after.Values, s => Assert.Same(cluster.Embedding[1], cluster.HostOf(s)));
        Assert.False(cluster.Embedding[1].HasExited);
    }

    /// <summary>Every replica of every shard of the model, by key, as the replica itself reports.</summary>
    private static async Task<Dictionary<string, ShardStatus>> ReplicaStatusAsync(LoopbackCluster cluster)
    {
        JsonNode spec = JsonNode.Parse(File.ReadAllText(Path.Combine(cluster.ModelDirectory, "model.json")))!;
        string[] keys = spec["tables"]!.AsArray()
            .SelectMany(t => Enumerable.Range(0, LoopbackCluster.ShardsPerTable)
                .SelectMany(s => Enumerable.Range(0, cluster.Replicas).Select(r => ShardKey.Format(LoopbackCluster.Model, "1", t!["name"]!.GetValue<string>(), s, r))))
            .ToArray();
        ShardStatus[] all = await Task.WhenAll(keys.Select(k => cluster.Client.GetGrain<IEmbeddingShardGrain>(k).GetStatus()));
        return keys.Zip(all).ToDictionary(p => p.First, p => p.Second);
    }

    /// <summary>The front end's recsys_replica_calls_total (summed) and recsys_replica_failovers_total for the model.</summary>
    private static async Task<(long Calls, long Failovers)> ReplicaMetricsAsync(LoopbackCluster cluster)
    {
        string text = await cluster.Http.GetStringAsync(new Uri("metrics", UriKind.Relative));
        long calls = 0, failovers = 0;
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith("recsys_replica_calls_total{", StringComparison.Ordinal)) calls += long.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            else if (line.StartsWith($"recsys_replica_failovers_total{{model=\"{LoopbackCluster.Model}\"}}", StringComparison.Ordinal)) failovers = long.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }
        return (calls, failovers);
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
