using System.Net;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Placement;

namespace Recsys.EmbeddingGrains.Tests;

/// <summary>Replica keys and where replicas go: the r-th silo of the base key's rendezvous ranking.</summary>
public sealed class ShardReplicaPlacementTests
{
    private static SiloAddress Silo(int port) => SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), 7);

    private static string[] Keys(int n) => Enumerable.Range(0, n).Select(i => $"embeddingshard/m/1/t/{i}").ToArray();

    [Fact]
    public void Top_lists_distinct_silos_by_descending_score_and_its_first_is_the_preferred_one()
    {
        SiloAddress[] silos = [Silo(11111), Silo(11112), Silo(11113), Silo(11114), Silo(11115)];
        foreach (string key in Keys(300))
        {
            ulong hash = ShardRanking.KeyHash(key);
            SiloAddress[] expected = silos.OrderByDescending(s => ShardRanking.Score(hash, s)).ToArray();
            SiloAddress[] top3 = ShardRanking.Top(key, silos, 3);
            Assert.Equal(expected.Take(3), top3);
            Assert.Equal(3, top3.Distinct().Count());
            Assert.Equal(ShardRanking.Preferred(key, silos), top3[0]);
            // Input order does not matter, and asking for more than there are gives all of them.
            Assert.Equal(expected, ShardRanking.Top(key, silos.Reverse(), 9));
        }
        Assert.Empty(ShardRanking.Top("embeddingshard/m/1/t/0", [], 2));
    }

    [Fact]
    public void A_joining_silo_moves_a_replica_only_when_it_takes_that_rank_or_one_above()
    {
        SiloAddress[] three = [Silo(11111), Silo(11112), Silo(11113)];
        SiloAddress joiner = Silo(11114);
        SiloAddress[] four = [.. three, joiner];
        const int replicas = 2;
        int shardsGainingJoiner = 0, replicasMoved = 0;
        string[] keys = Keys(4000);
        foreach (string key in keys)
        {
            SiloAddress[] before = ShardRanking.Top(key, three, 3);
            SiloAddress[] after = ShardRanking.Top(key, four, 4);
            // The old silos keep their relative order: the joiner is inserted, nothing else reshuffles.
            Assert.Equal(before, after.Where(s => !s.Equals(joiner)));
            int won = Array.IndexOf(after, joiner);
            for (int r = 0; r < replicas; r++)
            {
                SiloAddress was = ShardRanking.ForReplica(r == 0 ? key : $"{key}/r{r}", three)!;
                SiloAddress now = ShardRanking.ForReplica(r == 0 ? key : $"{key}/r{r}", four)!;
                Assert.Equal(before[r], was);
                Assert.Equal(after[r], now);
                // Ranks above the joiner's stay put; the joiner's rank and those below it shift by one.
                Assert.Equal(r < won, was.Equals(now));
                if (!was.Equals(now)) replicasMoved++;
            }
            if (won < replicas) shardsGainingJoiner++;
        }
        // The joiner lands in a shard's top 2 of 4 for half the shards (binomial sd ~32 of 2000), and
        // moves 3/8 of the replicas (rank 0 won: both shift; rank 1 won: one).
        Assert.InRange(shardsGainingJoiner, 1850, 2150);
        Assert.InRange(replicasMoved, 2750, 3250);
    }

    [Fact]
    public void Sibling_replicas_never_share_a_silo_while_there_are_enough_silos()
    {
        SiloAddress[] silos = [Silo(11111), Silo(11112), Silo(11113)];
        foreach (string key in Keys(500))
        {
            SiloAddress[] placed = Enumerable.Range(0, 3).Select(r => ShardRanking.ForReplica(r == 0 ? key : $"{key}/r{r}", silos)!).ToArray();
            Assert.Equal(3, placed.Distinct().Count());
            // Fewer silos than replicas: they wrap around the ranking, so some share, none goes unplaced.
            SiloAddress[] one = [silos[0]];
            Assert.All(Enumerable.Range(0, 3), r => Assert.Equal(silos[0], ShardRanking.ForReplica(r == 0 ? key : $"{key}/r{r}", one)));
            Assert.Equal(ShardRanking.Top(key, silos[..2], 2)[0], ShardRanking.ForReplica($"{key}/r2", silos[..2]));
        }
        Assert.Null(ShardRanking.ForReplica("embeddingshard/m/1/t/0/r1", []));
    }

    [Fact]
    public void Replica_keys_round_trip_and_replica_zero_keeps_the_plain_key()
    {
        Assert.Equal("m/1/t/3", ShardKey.Format("m", "1", "t", 3));
        Assert.Equal("m/1/t/3", ShardKey.Format("m", "1", "t", 3, 0));
        Assert.Equal("m/1/t/3/r2", ShardKey.Format("m", "1", "t", 3, 2));
        Assert.Equal(("m", "1", "t", 3, 2), ShardKey.ParseReplica("m/1/t/3/r2"));
        Assert.Equal(("m", "1", "t", 3, 0), ShardKey.ParseReplica("m/1/t/3"));
        Assert.Equal(("m", "1", "t", 3), ShardKey.Parse("m/1/t/3/r1"));
        Assert.Equal(("embeddingshard/m/1/t/3", 1), ShardKey.SplitReplica("embeddingshard/m/1/t/3/r1"));
        Assert.Equal(("embeddingshard/m/1/t/3", 0), ShardKey.SplitReplica("embeddingshard/m/1/t/3"));
        Assert.Throws<ArgumentOutOfRangeException>(() => ShardKey.Format("m", "1", "t", 3, -1));
    }

    [Theory]
    [InlineData("m/1/t/3/r0")]
    [InlineData("m/1/t/3/r01")]
    [InlineData("m/1/t/3/r")]
    [InlineData("m/1/t/3/x1")]
    [InlineData("m/1/t/-3")]
    [InlineData("m/1/t/3/r1/r2")]
    public void Malformed_replica_keys_are_refused_naming_the_key(string key)
    {
        var e = Assert.Throws<ArgumentException>(() => ShardKey.ParseReplica(key));
        Assert.Contains($"'{key}'", e.Message, StringComparison.Ordinal);
    }
}
