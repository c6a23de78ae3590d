using System.Collections.Immutable;
using System.Net;
using Recsys.EmbeddingGrains.Hosting;

namespace Recsys.Cluster.Tests;

/// <summary>
/// What wakes the rebalancer: a change of the active silo set, not the snapshots Orleans repeats on
/// every table refresh (the cause of a rebalancer that never made a pass, docs/DEPLOY.md).
/// </summary>
public sealed class ActiveSiloChangesTests
{
    private static readonly SiloAddress A = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11111), 1);
    private static readonly SiloAddress B = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11112), 1);
    private static readonly SiloAddress C = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11113), 1);

    private static ClusterMembershipSnapshot Snapshot(long version, params (SiloAddress Silo, SiloStatus Status)[] members) =>
        new(members.ToImmutableDictionary(m => m.Silo, m => new ClusterMember(m.Silo, m.Status, m.Silo.ToString())), new MembershipVersion(version));

    [Fact]
    public void Repeated_snapshots_of_the_same_active_silos_are_not_changes()
    {
        var changes = new ActiveSiloChanges();
        Assert.True(changes.Changed(Snapshot(4, (A, SiloStatus.Active), (B, SiloStatus.Active))));
        // What Orleans 10.4.2 publishes every table refresh: same version, same statuses.
        for (int i = 0; i < 5; i++) Assert.False(changes.Changed(Snapshot(4, (A, SiloStatus.Active), (B, SiloStatus.Active))));
        // A newer version that leaves the active set as it was (a silo only starting to join) changes nothing either.
        Assert.False(changes.Changed(Snapshot(5, (A, SiloStatus.Active), (B, SiloStatus.Active), (C, SiloStatus.Joining))));
    }

    [Fact]
    public void A_silo_becoming_active_or_leaving_is_a_change()
    {
        var changes = new ActiveSiloChanges();
        Assert.True(changes.Changed(Snapshot(5, (A, SiloStatus.Active), (B, SiloStatus.Active), (C, SiloStatus.Joining))));
        Assert.True(changes.Changed(Snapshot(6, (A, SiloStatus.Active), (B, SiloStatus.Active), (C, SiloStatus.Active))));
        Assert.False(changes.Changed(Snapshot(6, (A, SiloStatus.Active), (B, SiloStatus.Active), (C, SiloStatus.Active))));
        Assert.True(changes.Changed(Snapshot(7, (A, SiloStatus.Active), (B, SiloStatus.ShuttingDown), (C, SiloStatus.Active))));
        Assert.Equal([A, C], ActiveSiloChanges.Active(Snapshot(7, (A, SiloStatus.Active), (B, SiloStatus.ShuttingDown), (C, SiloStatus.Active))).Order());
        // Same count, different silo: B came back under a new generation while C died.
        SiloAddress b2 = SiloAddress.New(B.Endpoint, 2);
        Assert.True(changes.Changed(Snapshot(8, (A, SiloStatus.Active), (b2, SiloStatus.Active), (C, SiloStatus.Dead))));
    }

    [Fact]
    public void The_first_snapshot_is_a_change_even_with_no_active_silo() =>
        Assert.True(new ActiveSiloChanges().Changed(Snapshot(1, (A, SiloStatus.Joining))));
}
