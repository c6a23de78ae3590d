using System.Net;
using Microsoft.Extensions.Options;
using Recsys.EmbeddingGrains.Hosting;
using Recsys.EmbeddingGrains.Placement;

namespace Recsys.EmbeddingGrains.Tests;

/// <summary>The rendezvous ranking and the activation gate, without a cluster.</summary>
public sealed class ShardPlacementTests
{
    private static SiloAddress Silo(int port) => SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), 7);

    private static string[] Keys(int n) => Enumerable.Range(0, n).Select(i => $"embeddingshard/m/1/t/{i}").ToArray();

    [Fact]
    public void Preferred_is_the_silo_with_the_highest_score_whatever_the_order()
    {
        SiloAddress[] silos = [Silo(11111), Silo(11112), Silo(11113), Silo(11114)];
        foreach (string key in Keys(200))
        {
            ulong hash = ShardRanking.KeyHash(key);
            SiloAddress best = silos.MaxBy(s => ShardRanking.Score(hash, s))!;
            Assert.Equal(best, ShardRanking.Preferred(key, silos));
            Assert.Equal(best, ShardRanking.Preferred(key, silos.Reverse()));
        }
        Assert.Null(ShardRanking.Preferred("embeddingshard/m/1/t/0", []));
    }

    [Fact]
    public void A_joining_silo_takes_only_keys_it_wins_and_a_leaving_one_hands_on_only_its_own()
    {
        SiloAddress[] three = [Silo(11111), Silo(11112), Silo(11113)];
        SiloAddress joiner = Silo(11114);
        SiloAddress[] four = [.. three, joiner];
        string[] keys = Keys(4000);
        int moved = 0;
        foreach (string key in keys)
        {
            SiloAddress before = ShardRanking.Preferred(key, three)!;
            SiloAddress after = ShardRanking.Preferred(key, four)!;
            if (!after.Equals(before))
            {
                Assert.Equal(joiner, after);
                moved++;
            }
            // The joiner leaving again: its keys go back where they were, no other key moves.
            Assert.Equal(before, ShardRanking.Preferred(key, three));
        }
        // Even spread: about a quarter of the keys move to the fourth silo (binomial sd ~27 of 1000).
        Assert.InRange(moved, 850, 1150);
    }

    [Fact]
    public async Task The_activation_gate_lets_cap_loads_run_and_queues_the_rest_in_turn()
    {
        using var gate = new ShardActivationGate(Options.Create(new EmbeddingShardOptions { MaxConcurrentActivations = 2 }));
        var entered = new List<Task<ShardActivationGate.Lease>>();
        for (int i = 0; i < 5; i++) entered.Add(gate.EnterAsync(CancellationToken.None).AsTask());
        Assert.Equal(2, entered.Count(t => t.IsCompletedSuccessfully));
        Assert.Equal(2, gate.Inside);
        Assert.Equal(3, gate.Waited);

        // Each finished load lets exactly one waiting activation in.
        for (int done = 0; done < 3; done++)
        {
            Task<ShardActivationGate.Lease> finished = entered.First(t => t.IsCompletedSuccessfully);
            entered.Remove(finished);
            (await finished).Dispose();
            await WaitUntil(() => entered.Count(t => t.IsCompletedSuccessfully) == Math.Min(2, entered.Count));
            Assert.Equal(Math.Min(2, entered.Count), gate.Inside);
        }
        foreach (Task<ShardActivationGate.Lease> t in entered) (await t).Dispose();
        Assert.Equal(0, gate.Inside);
        Assert.Equal(2, gate.Peak);
    }

    [Fact]
    public void A_cap_below_one_is_refused_by_name()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ShardActivationGate(Options.Create(new EmbeddingShardOptions { MaxConcurrentActivations = 0 })));
        Assert.Contains(nameof(EmbeddingShardOptions.MaxConcurrentActivations), e.Message);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        long deadline = Environment.TickCount64 + 10_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "condition not met within 10 s");
            await Task.Delay(10);
        }
    }
}
