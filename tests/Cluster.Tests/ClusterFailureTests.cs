using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Placement;
using Xunit.Abstractions;

namespace Recsys.Cluster.Tests;

/// <summary>
/// Real processes on loopback: redis-server, 2 embedding silos, 1 front end. Every test starts its
/// own cluster (losing a silo is not undoable) and kills all of it at the end, pass or fail.
/// </summary>
public sealed class ClusterFailureTests(ITestOutputHelper log)
{
    private const int LoadRequests = 200;
    private const int LoadWorkers = 4;

    /// <summary>
    /// Kill to service resumed: failure detection (2 s probes, 3 missed: 3-6 s here), then the
    /// shards reactivating on the survivor (plus, with the consistent directory, its ~5 s lease).
    /// Measured 4.5-12.9 s on this shared 2-core machine at load averages of 37-68; the bound leaves
    /// room for a slower machine and still fails the 49-110 s stalls this test was skipped for.
    /// </summary>
    private static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Before the kill: scores over HTTP equal the single-node model's and the shards live only on
    /// the embedding silos, spread over both. Then SIGKILL one embedding silo under load: no wrong
    /// score, every failure a 503/504 with a JSON error, and the survivor serves every shard again
    /// within <see cref="RecoveryBound"/> of the kill. With either grain directory.
    /// </summary>
    [RedisTheory]
    [InlineData("default")]
    [InlineData("consistent")]
    public async Task Killing_an_embedding_silo_under_load_gives_no_wrong_score_and_service_resumes_on_the_survivor(string grainDirectory)
    {
        await using LoopbackCluster cluster = await LoopbackCluster.StartAsync(log, 2, "--grain-directory", grainDirectory);
        ScoredRequest[] requests = RankLoad.Requests(cluster.ModelDirectory, 40, seed: 2);
        await cluster.WarmUpAsync(requests);
        var check = Stopwatch.StartNew();
        for (int i = 0; i < requests.Length; i++)
        {
            RankOutcome o = await RankLoad.RankOnceAsync(cluster.Http, requests[i], i, check);
            Assert.True(o.Status == HttpStatusCode.OK && !o.WrongScores, RankLoad.Describe(o));
        }

        Dictionary<string, ShardStatus> before = await cluster.ShardStatusAsync();
        var perSilo = before.Values.GroupBy(s => cluster.HostOf(s)?.Name ?? s.Silo).ToDictionary(g => g.Key, g => g.Count());
        log.WriteLine($"{before.Count} shards: {string.Join(", ", perSilo.Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.Equal(3 * LoopbackCluster.ShardsPerTable, before.Count);
        Assert.All(before.Values, s => Assert.StartsWith("embedding-", cluster.HostOf(s)?.Name ?? s.Silo, StringComparison.Ordinal));
        // Fresh data directory: every shard loaded its rows from the model, none recovered a checkpoint yet.
        Assert.All(before.Values, s => Assert.False(s.RecoveredFromCheckpoint, $"shard {s.Key} recovered a checkpoint in a fresh cluster"));
        // Rendezvous hashing over two silos: both get a fair share (fewer than 2 of 18 has odds ~1e-4).
        Assert.Equal(2, perSilo.Count);
        Assert.All(perSilo.Values, count => Assert.True(count >= 2, $"uneven placement: {string.Join(", ", perSilo)}"));
        SiloProcess victim = cluster.Embedding[0], survivor = cluster.Embedding[1];
        string[] moved = before.Where(kv => cluster.HostOf(kv.Value) == victim).Select(kv => kv.Key).ToArray();
        string[] stayed = before.Where(kv => cluster.HostOf(kv.Value) == survivor).Select(kv => kv.Key).ToArray();
        Assert.NotEmpty(moved);

        DateTime clockZero = DateTime.UtcNow;
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
        RankOutcome? lastFailure = failed.MaxBy(o => o.Done);
        // Resumed: the first answer after which no request failed (the load may end before it; then keep asking).
        TimeSpan? resumedAt = lastFailure is null
            ? killedAt
            : outcomes.Where(o => o.Status == HttpStatusCode.OK && o.Done > lastFailure.Done).Select(o => (TimeSpan?)o.Done).Min();
        resumedAt ??= await FirstSuccessAsync(cluster, requests[0], clock, killedAt + RecoveryBound);
        TimeSpan recovery = resumedAt.Value - killedAt;
        log.WriteLine($"grain directory {grainDirectory}: killed {victim.Name} (pid {victim.Pid}, {moved.Length} of {before.Count} shards) at {killedAt.TotalMilliseconds:0} ms, load average {loadAtKill}; " +
            $"{outcomes.Count} requests over {clock.Elapsed.TotalSeconds:0.0} s: {outcomes.Count - failed.Count} ok, {failed.Count} failed, {wrong.Count} wrong scores; " +
            $"recovery (kill -> service resumed) {recovery.TotalMilliseconds:0} ms, kill -> last failed answer {(lastFailure is null ? 0 : (lastFailure.Done - killedAt).TotalMilliseconds):0} ms");
        foreach (RankOutcome f in failed.Take(10)) log.WriteLine("  failed " + RankLoad.Describe(f));
        WriteTimeline(cluster, clockZero, killedAt, outcomes);

        Assert.Empty(wrong);
        Assert.Equal(LoadRequests, outcomes.Count);
        // A request lost with the silo may only fail loudly: 503/504 with a JSON error naming why.
        Assert.All(failed, f =>
        {
            Assert.True(f.Status is HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout, RankLoad.Describe(f));
            Assert.False(string.IsNullOrEmpty(JsonNode.Parse(f.Error!)!["error"]?.GetValue<string>()), RankLoad.Describe(f));
        });
        Assert.True(recovery <= RecoveryBound,
            $"service resumed {recovery.TotalSeconds:0.0} s after the kill, bound {RecoveryBound.TotalSeconds:0} s (timeline: {cluster.LogDirectory})");

        // Service stays up: every later request succeeds with the right scores.
        for (int i = 0; i < 20; i++)
        {
            RankOutcome o = await RankLoad.RankOnceAsync(cluster.Http, requests[i], i, clock);
            Assert.True(o.Status == HttpStatusCode.OK && !o.WrongScores, RankLoad.Describe(o));
        }

        // The shards of the dead silo now live on the survivor, recovered from the checkpoints in the shared data directory.
        Dictionary<string, ShardStatus> after = await cluster.ShardStatusAsync();
        Assert.All(after.Values, s => Assert.Same(survivor, cluster.HostOf(s)));
        Assert.All(moved, key => Assert.True(after[key].RecoveredFromCheckpoint, $"shard {key} moved but reloaded instead of recovering its checkpoint"));
        // A survivor's shard that recovered a checkpoint was deactivated by the failure and activated again.
        string[] collateral = stayed.Where(key => after[key].RecoveredFromCheckpoint).ToArray();
        log.WriteLine($"survivor's own shards reactivated by the failure: {collateral.Length} of {stayed.Length} {string.Join(" ", collateral)}");
        // The consistent directory rebuilds the dead silo's range from the survivors instead of dropping what it held.
        if (grainDirectory == "consistent") Assert.Empty(collateral);
        Assert.False(survivor.HasExited);
    }

    [RedisFact]
    public async Task Graceful_shutdown_of_an_embedding_silo_loses_no_request()
    {
        // Shards of the leaving silo deactivate there and reactivate on the other one (recovering the
        // checkpoint): requests touching them wait for that, 1.5-3 s on this shared 2-core machine
        // with up to 12 shards reactivating at once, so the deadline is 5 s here (the kill test keeps
        // the default 1 s). The slowest answer is in the test output.
        await using LoopbackCluster cluster = await LoopbackCluster.StartAsync(log, 2, "--deadline-ms", "5000");
        ScoredRequest[] requests = RankLoad.Requests(cluster.ModelDirectory, 40, seed: 3);
        await cluster.WarmUpAsync(requests);
        SiloProcess leaving = cluster.Embedding[1], staying = cluster.Embedding[0];
        var clock = Stopwatch.StartNew();
        TimeSpan stoppedAt = default;
        List<RankOutcome> outcomes = await RankLoad.RunAsync(cluster.Http, requests, LoadRequests, LoadWorkers, TimeSpan.FromMilliseconds(100), triggerAt: 30, () =>
        {
            stoppedAt = clock.Elapsed;
            leaving.Terminate();
            return Task.CompletedTask;
        }, clock);
        await leaving.WaitForExitAsync(TimeSpan.FromSeconds(60));

        List<RankOutcome> failed = outcomes.Where(o => o.Status != HttpStatusCode.OK || o.WrongScores).ToList();
        TimeSpan slowest = outcomes.Where(o => o.Sent >= stoppedAt).Select(o => o.Done - o.Sent).DefaultIfEmpty().Max();
        log.WriteLine($"SIGTERM to {leaving.Name} at {stoppedAt.TotalMilliseconds:0} ms, exit code {leaving.ExitCode}; {outcomes.Count} requests, {failed.Count} failed or wrong; slowest answer after the signal {slowest.TotalMilliseconds:0} ms");
        foreach (RankOutcome f in failed.Take(10)) log.WriteLine("  failed " + RankLoad.Describe(f));

        Assert.Empty(failed);
        Assert.Equal(0, leaving.ExitCode);
        Dictionary<string, ShardStatus> after = await cluster.ShardStatusAsync();
        Assert.All(after.Values, s => Assert.Same(staying, cluster.HostOf(s)));
    }

    /// <summary>
    /// A third embedding silo joins under load, without a restart of the others: the shards it now
    /// wins by rendezvous hashing move to it (each old silo's rebalancer moves its own, a few at a
    /// time), the others stay put, and no request fails or gets a wrong score before, during or
    /// after the moves. 18 shards: the new silo wins none about once in 1,500 runs ((2/3)^18).
    /// </summary>
    [RedisFact]
    public async Task A_joining_embedding_silo_takes_the_shards_it_wins_under_load_with_no_failed_request()
    {
        await using LoopbackCluster cluster = await LoopbackCluster.StartAsync(log, 2, "--deadline-ms", "5000");
        ScoredRequest[] requests = RankLoad.Requests(cluster.ModelDirectory, 20, seed: 4);
        await cluster.WarmUpAsync(requests);
        await AssertAllRightAsync(cluster, requests);
        Dictionary<string, ShardStatus> before = await cluster.ShardStatusAsync();
        log.WriteLine($"before the join: {PerSilo(cluster, before)}");

        var clock = Stopwatch.StartNew();
        using var stopLoad = new CancellationTokenSource();
        var outcomes = new System.Collections.Concurrent.ConcurrentBag<RankOutcome>();
        int sent = -1;
        async Task Worker()
        {
            while (!stopLoad.IsCancellationRequested)
            {
                int i = Interlocked.Increment(ref sent);
                outcomes.Add(await RankLoad.RankOnceAsync(cluster.Http, requests[i % requests.Length], i, clock));
                await Task.Delay(100);
            }
        }
        Task load = Task.WhenAll(Enumerable.Range(0, LoadWorkers).Select(_ => Task.Run(Worker)));

        SiloProcess joined;
        Dictionary<string, ShardStatus> after;
        string? balanced;
        TimeSpan joinedAt, balancedAt;
        try
        {
            joined = await cluster.AddEmbeddingSiloAsync();
            joinedAt = clock.Elapsed;
            // Every shard on the silo the ranking over all three embedding silos prefers (the rebalancers
            // wait for membership to settle, 5 s, then move two shards at a time per silo).
            (after, balanced) = await WaitForPreferredPlacementAsync(cluster, 3, TimeSpan.FromSeconds(60));
            balancedAt = clock.Elapsed;
            await Task.Delay(TimeSpan.FromSeconds(1)); // answers right after the last move count too
        }
        finally
        {
            await stopLoad.CancelAsync();
            await load;
        }

        List<RankOutcome> failed = outcomes.Where(o => o.Status != HttpStatusCode.OK).ToList();
        List<RankOutcome> wrong = outcomes.Where(o => o.WrongScores).ToList();
        string[] moved = after.Keys.Where(k => !SameSilo(before[k], after[k])).Order(StringComparer.Ordinal).ToArray();
        TimeSpan slowest = outcomes.Select(o => o.Done - o.Sent).DefaultIfEmpty().Max();
        log.WriteLine($"{joined.Name} joined at {joinedAt.TotalSeconds:0.0} s, " + (balanced is null ? $"every shard on its preferred silo at {balancedAt.TotalSeconds:0.0} s; " : $"NOT balanced at {balancedAt.TotalSeconds:0.0} s ({balanced}); ") +
            $"after: {PerSilo(cluster, after)}; moved {moved.Length}: {string.Join(" ", moved)}; " +
            $"{outcomes.Count} requests, {failed.Count} failed, {wrong.Count} wrong scores, slowest {slowest.TotalMilliseconds:0} ms; load average {LoadAverage()}");
        foreach (RankOutcome f in failed.Concat(wrong).Take(10)) log.WriteLine("  failed " + RankLoad.Describe(f));

        Assert.Empty(wrong);
        Assert.Empty(failed);
        SiloAddress[] hosts = await cluster.EmbeddingSiloAddressesAsync();
        Assert.Equal(3, hosts.Length);
        foreach ((string key, ShardStatus status) in after)
        {
            bool onJoined = cluster.HostOf(status) == joined;
            bool wins = ShardRanking.Preferred(cluster.Client.GetGrain<IEmbeddingShardGrain>(key).GetGrainId().ToString(), hosts)!.Endpoint.Port == joined.SiloPort;
            // Only shards the joined silo wins may move, and they move there; nothing else was reactivated.
            Assert.Equal(onJoined, moved.Contains(key));
            Assert.Equal(onJoined, status.RecoveredFromCheckpoint);
            if (onJoined) Assert.True(wins, $"{key} moved to {joined.Name}, which does not win it");
        }
        // Full convergence: every old silo's rebalancer made its passes (one used to never start, DEPLOY.md).
        Assert.True(balanced is null, $"placement did not converge: {balanced}");
        Assert.NotEmpty(moved);
        await AssertAllRightAsync(cluster, requests);
    }

    private static bool SameSilo(ShardStatus a, ShardStatus b) => a.Silo == b.Silo;

    /// <summary>
    /// Until every shard is active on the silo <see cref="ShardRanking"/> prefers among the running
    /// embedding silos (there must be <paramref name="embeddingSilos"/> of them), as the test client
    /// sees membership. Returns the statuses by shard key, and why placement is not balanced if the
    /// timeout passed first.
    /// </summary>
    private static async Task<(Dictionary<string, ShardStatus> Statuses, string? NotBalanced)> WaitForPreferredPlacementAsync(LoopbackCluster cluster, int embeddingSilos, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        string why = "";
        Dictionary<string, ShardStatus>? last = null;
        while (watch.Elapsed < timeout)
        {
            SiloAddress[] hosts = await cluster.EmbeddingSiloAddressesAsync();
            if (hosts.Length == embeddingSilos)
            {
                Dictionary<string, ShardStatus> statuses = await cluster.ShardStatusAsync();
                var preferred = statuses.Keys.ToDictionary(k => k, k => ShardRanking.Preferred(cluster.Client.GetGrain<IEmbeddingShardGrain>(k).GetGrainId().ToString(), hosts)!);
                string[] misplaced = statuses.Where(kv => !preferred[kv.Key].Equals(kv.Value.SiloAddress)).Select(kv => kv.Key).ToArray();
                if (misplaced.Length == 0) return (statuses, null);
                last = statuses;
                why = $"{misplaced.Length} shards not on their preferred silo yet: {string.Join(" ", misplaced)}";
            }
            else
            {
                why = $"{hosts.Length} active embedding silos, waiting for {embeddingSilos}";
            }
            await Task.Delay(500);
        }
        if (last is null) throw new TimeoutException($"placement not balanced after {timeout.TotalSeconds:0} s: {why} (logs: {cluster.LogDirectory})");
        return (last, $"{why} after {timeout.TotalSeconds:0} s (logs: {cluster.LogDirectory})");
    }

    private static async Task AssertAllRightAsync(LoopbackCluster cluster, ScoredRequest[] requests)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < requests.Length; i++)
        {
            RankOutcome o = await RankLoad.RankOnceAsync(cluster.Http, requests[i], i, clock);
            Assert.True(o.Status == HttpStatusCode.OK && !o.WrongScores, RankLoad.Describe(o));
        }
    }

    private static string PerSilo(LoopbackCluster cluster, Dictionary<string, ShardStatus> shards) =>
        string.Join(", ", shards.Values.GroupBy(s => cluster.HostOf(s)?.Name ?? s.Silo).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"));

    /// <summary>Every answer of the load with UTC times, next to the processes' logs, to line up with their membership and shard lines.</summary>
    private static void WriteTimeline(LoopbackCluster cluster, DateTime clockZero, TimeSpan killedAt, List<RankOutcome> outcomes)
    {
        string At(TimeSpan t) => (clockZero + t).ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture);
        var lines = new List<string> { $"{At(killedAt)} kill" };
        lines.AddRange(outcomes.OrderBy(o => o.Done).Select(o => $"{At(o.Done)} #{o.Index} {(int)o.Status} sent {At(o.Sent)} took {(o.Done - o.Sent).TotalMilliseconds:0} ms{(o.Error is null ? "" : " " + o.Error)}"));
        Directory.CreateDirectory(cluster.LogDirectory);
        File.WriteAllLines(Path.Combine(cluster.LogDirectory, "load.log"), lines);
    }

    /// <summary>Asks until a ranking succeeds; returns when (on clock), or fails the test at giveUpAt.</summary>
    private static async Task<TimeSpan> FirstSuccessAsync(LoopbackCluster cluster, ScoredRequest request, Stopwatch clock, TimeSpan giveUpAt)
    {
        while (true)
        {
            RankOutcome o = await RankLoad.RankOnceAsync(cluster.Http, request, 0, clock);
            if (o.Status == HttpStatusCode.OK) return o.Done;
            if (clock.Elapsed > giveUpAt)
            {
                throw new TimeoutException($"no successful ranking by {giveUpAt.TotalSeconds:0.0} s on the test clock (last: {RankLoad.Describe(o)}); timeline: {cluster.LogDirectory}");
            }
            await Task.Delay(200);
        }
    }

    /// <summary>The 1, 5 and 15 minute load averages: how busy the shared machine was when the silo died.</summary>
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
