using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Metrics;
using Recsys.Router.Serving;

namespace Recsys.Router.Tests;

/// <summary>
/// <see cref="ShardCallRetry"/> over a shard's replicas: a failed or unanswered call goes to the
/// sibling, a bad request goes nowhere else, one replica retries itself. The replicas are scripted
/// shard grains (the retry only sees the grain interface); each answers with its own replica number
/// and values, so an answer from the wrong one is caught.
/// </summary>
public sealed class ReplicaRetryTests
{
    private static readonly PooledLookupRequest Request = new() { Ids = [3, 7], Offsets = [0, 1, 2] };

    private sealed class ScriptedShard(int replica, params Func<Task<PooledLookupResult>?>[] script) : IEmbeddingShardGrain
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        /// <summary>What an answer of this replica holds: bags x dim values no other replica gives.</summary>
        public static float[] Values(int replica) => [replica + 0.5f, replica + 1.5f, replica + 2.5f, replica + 3.5f];

        public Task<PooledLookupResult> Lookup(PooledLookupRequest request)
        {
            int call = Interlocked.Increment(ref _calls) - 1;
            // Past the script's end the last step repeats.
            Func<Task<PooledLookupResult>?> step = script[Math.Min(call, script.Length - 1)];
            return step() ?? Task.FromResult(new PooledLookupResult { Bags = 2, Dim = 2, Pooled = Values(replica), Replica = replica });
        }

        public Task UpsertRows(RowUpsert upsert) => throw new NotSupportedException();
        public Task<ShardStatus> GetStatus() => throw new NotSupportedException();
        public Task Checkpoint() => throw new NotSupportedException();
        public Task<bool> Rebalance(SiloAddress from) => throw new NotSupportedException();
    }

    private static Task<PooledLookupResult>? Answer() => null;
    private static Task<PooledLookupResult>? SiloGone() => Task.FromException<PooledLookupResult>(new SiloUnavailableException("silo gone"));
    private static Task<PooledLookupResult>? BadRequest() => Task.FromException<PooledLookupResult>(new ArgumentException("Ids[0] is out of range", "Ids"));

    private static (ShardReplicas Set, ModelMetrics Metrics) Replicas(params ScriptedShard[] grains)
    {
        var metrics = new ModelMetrics("m");
        string[] keys = Enumerable.Range(0, grains.Length).Select(r => ShardKey.Format("m", "1", "t", 0, r)).ToArray();
        return (new ShardReplicas(grains, keys, "t", 0, metrics), metrics);
    }

    [Fact]
    public async Task A_failed_call_goes_to_the_sibling_and_the_failed_replica_is_passed_over_afterwards()
    {
        var r0 = new ScriptedShard(0, SiloGone);
        var r1 = new ScriptedShard(1, Answer);
        (ShardReplicas set, ModelMetrics metrics) = Replicas(r0, r1);

        PooledLookupResult result = await ShardCallRetry.LookupAsync(set, Request, CancellationToken.None);

        Assert.Equal(1, result.Replica);
        Assert.Equal(ScriptedShard.Values(1), result.Pooled);
        Assert.Equal((1, 1), (r0.Calls, r1.Calls));
        Assert.Equal(1, metrics.ReplicaFailovers);
        // Replica 0 now cools down: the next lookups go straight to replica 1, though both are idle.
        for (int i = 0; i < 3; i++) Assert.Equal(1, (await ShardCallRetry.LookupAsync(set, Request, CancellationToken.None)).Replica);
        Assert.Equal((1, 4), (r0.Calls, r1.Calls));
        Assert.Equal((1L, 4L), (set.Calls(0), set.Calls(1)));
        Assert.Equal((0, 0), (set.Outstanding(0), set.Outstanding(1)));
    }

    [Fact]
    public async Task An_unanswered_call_gets_a_sibling_alongside_and_the_first_whole_answer_wins()
    {
        var stranded = new TaskCompletionSource<PooledLookupResult>();
        var r0 = new ScriptedShard(0, () => stranded.Task);
        var r1 = new ScriptedShard(1, Answer);
        (ShardReplicas set, ModelMetrics metrics) = Replicas(r0, r1);

        PooledLookupResult result = await ShardCallRetry.LookupAsync(set, Request, CancellationToken.None);

        Assert.Equal(1, result.Replica);
        Assert.Equal(ScriptedShard.Values(1), result.Pooled);
        Assert.Equal(1, metrics.ReplicaFailovers);
        // The stranded call still counts against replica 0, so the next slice picks replica 1 by load alone.
        Assert.Equal(1, set.Outstanding(0));
        Assert.Equal(1, set.Choose());
        stranded.SetException(new TimeoutException("response timeout"));
        Assert.Equal(0, set.Outstanding(0));
    }

    [Fact]
    public async Task A_bad_request_is_not_sent_to_the_sibling()
    {
        var r0 = new ScriptedShard(0, BadRequest);
        var r1 = new ScriptedShard(1, Answer);
        (ShardReplicas set, ModelMetrics metrics) = Replicas(r0, r1);

        var e = await Assert.ThrowsAsync<ArgumentException>(() => ShardCallRetry.LookupAsync(set, Request, CancellationToken.None));

        Assert.Equal("Ids", e.ParamName);
        Assert.Equal((1, 0), (r0.Calls, r1.Calls));
        Assert.Equal(0, metrics.ReplicaFailovers);
        // Not the replica's fault: it is not cooled down.
        Assert.Equal(0, set.Choose());
    }

    [Fact]
    public async Task With_both_replicas_failing_each_is_asked_in_turn_until_one_answers()
    {
        var r0 = new ScriptedShard(0, SiloGone, SiloGone, Answer);
        var r1 = new ScriptedShard(1, SiloGone);
        (ShardReplicas set, _) = Replicas(r0, r1);

        PooledLookupResult result = await ShardCallRetry.LookupAsync(set, Request, CancellationToken.None);

        Assert.Equal(0, result.Replica);
        Assert.Equal(ScriptedShard.Values(0), result.Pooled);
        Assert.Equal(3, r0.Calls);
        Assert.Equal(2, r1.Calls);
    }

    [Fact]
    public async Task One_replica_retries_the_same_grain()
    {
        var only = new ScriptedShard(0, SiloGone, SiloGone, Answer);
        (ShardReplicas set, ModelMetrics metrics) = Replicas(only);

        PooledLookupResult result = await ShardCallRetry.LookupAsync(set, Request, CancellationToken.None);

        Assert.Equal(ScriptedShard.Values(0), result.Pooled);
        Assert.Equal(3, only.Calls);
        Assert.Equal(0, metrics.ReplicaFailovers);
        Assert.Empty(metrics.ReplicaCallCounts());
    }

    [Fact]
    public async Task Giving_up_stops_the_retries_with_the_batch()
    {
        var r0 = new ScriptedShard(0, SiloGone);
        var r1 = new ScriptedShard(1, SiloGone);
        (ShardReplicas set, _) = Replicas(r0, r1);
        using var giveUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ShardCallRetry.LookupAsync(set, Request, giveUp.Token));
        Assert.True(r0.Calls >= 1 && r1.Calls >= 1, $"calls {r0.Calls} and {r1.Calls}: both replicas should have been tried");
    }
}
