using Recsys.Router.Serving;

namespace Recsys.Router.Tests;

/// <summary>The least-outstanding choice among a shard's replicas.</summary>
public sealed class ReplicaChoiceTests
{
    private const long Now = 1_000_000;

    [Theory]
    [InlineData(new[] { 3, 1, 2 }, 1)]
    [InlineData(new[] { 0, 0, 0 }, 0)]
    [InlineData(new[] { 2, 1, 1 }, 1)]
    [InlineData(new[] { 5, 5, 4, 4 }, 2)]
    [InlineData(new[] { 7 }, 0)]
    public void The_replica_with_the_fewest_outstanding_calls_wins_ties_in_rank_order(int[] outstanding, int expected)
    {
        Assert.Equal(expected, ReplicaChoice.Pick(outstanding, new long[outstanding.Length], Now));
    }

    [Fact]
    public void A_replica_that_failed_recently_is_passed_over_while_a_sibling_is_healthy()
    {
        int[] outstanding = [0, 4, 2];
        // Replica 0 failed and cools down until Now + 1: the least busy healthy one is 2.
        Assert.Equal(2, ReplicaChoice.Pick(outstanding, [Now + 1, 0, 0], Now));
        // Its cool-down over, it is the least busy again.
        Assert.Equal(0, ReplicaChoice.Pick(outstanding, [Now, 0, 0], Now));
        // All failed recently: ask the least busy anyway rather than nobody.
        Assert.Equal(0, ReplicaChoice.Pick(outstanding, [Now + 5, Now + 5, Now + 5], Now));
    }

    [Fact]
    public void Excluded_replicas_are_never_chosen_and_excluding_all_gives_none()
    {
        int[] outstanding = [0, 4, 2];
        long[] healthy = new long[3];
        Assert.Equal(2, ReplicaChoice.Pick(outstanding, healthy, Now, excluded: 0b001));
        Assert.Equal(1, ReplicaChoice.Pick(outstanding, healthy, Now, excluded: 0b101));
        // An excluded healthy replica does not beat a cooling one that is not excluded.
        Assert.Equal(1, ReplicaChoice.Pick(outstanding, [0, Now + 1, 0], Now, excluded: 0b101));
        Assert.Equal(-1, ReplicaChoice.Pick(outstanding, healthy, Now, excluded: 0b111));
    }

    [Fact]
    public void Mismatched_inputs_are_refused_by_name()
    {
        var e = Assert.Throws<ArgumentException>(() => ReplicaChoice.Pick([1, 2], [0], Now));
        Assert.Equal("coolingUntil", e.ParamName);
    }
}
