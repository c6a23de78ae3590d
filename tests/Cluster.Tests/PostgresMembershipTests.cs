using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Cli.Commands;
using Recsys.Router.Hosting.Membership;
using Xunit.Abstractions;

namespace Recsys.Cluster.Tests;

/// <summary>
/// The PostgreSQL membership table against a real server (RECSYS_TEST_POSTGRES): the optimistic
/// concurrency Orleans' protocol depends on, and a real 3-process cluster whose membership lives there.
/// Each test uses its own cluster id, so runs share one database without seeing each other.
/// </summary>
public sealed class PostgresMembershipTests(ITestOutputHelper log)
{
    [PostgresFact]
    public async Task Writes_win_only_against_the_version_and_etag_they_read()
    {
        await using NpgsqlDataSource database = NpgsqlDataSource.Create(ClusterChoice.Parse(Postgres.RequireUrl()).Postgres!);
        string clusterId = "pg-table-" + Guid.NewGuid().ToString("N")[..6];
        PostgresMembershipTable table = Table(database, clusterId);
        await table.InitializeMembershipTable(tryInitTableVersion: true);
        await table.InitializeMembershipTable(tryInitTableVersion: true); // a second silo starting: no error, no reset

        MembershipTableData empty = await table.ReadAll();
        Assert.Empty(empty.Members);
        Assert.Equal(0, empty.Version.Version);

        MembershipEntry a = Entry(11111, SiloStatus.Joining);
        Assert.True(await table.InsertRow(a, empty.Version.Next()));
        // A second writer that read the same version loses, even for another silo.
        Assert.False(await table.InsertRow(Entry(11112, SiloStatus.Joining), empty.Version.Next()));

        MembershipTableData one = await table.ReadAll();
        Assert.Equal(1, one.Version.Version);
        (MembershipEntry readBack, string etag) = Assert.Single(one.Members);
        AssertSameEntry(a, readBack);
        // The same silo inserted twice is refused even with a current version.
        Assert.False(await table.InsertRow(a, one.Version.Next()));

        a.Status = SiloStatus.Active;
        a.AddOrUpdateSuspector(Entry(11112, SiloStatus.Active).SiloAddress, new DateTime(2026, 11, 26, 17, 0, 0, DateTimeKind.Utc), 3);
        Assert.True(await table.UpdateRow(a, etag, one.Version.Next()));
        MembershipTableData two = await table.ReadRow(a.SiloAddress);
        Assert.Equal(2, two.Version.Version);
        (MembershipEntry updated, string etag2) = Assert.Single(two.Members);
        AssertSameEntry(a, updated);
        Assert.NotEqual(etag, etag2);
        // The old etag is stale now, and so is the old version.
        Assert.False(await table.UpdateRow(a, etag, two.Version.Next()));
        Assert.False(await table.UpdateRow(a, etag2, one.Version.Next()));

        // I-am-alive moves the liveness time only: the row's etag and the table version stay.
        a.IAmAliveTime = a.IAmAliveTime.AddMinutes(5);
        await table.UpdateIAmAlive(a);
        MembershipTableData alive = await table.ReadAll();
        Assert.Equal(2, alive.Version.Version);
        Assert.Equal(etag2, alive.Members[0].Item2);
        Assert.Equal(Micros(a.IAmAliveTime), Micros(alive.Members[0].Item1.IAmAliveTime));

        // Clean-up removes dead silos last seen before the date, nothing else.
        MembershipEntry dead = Entry(11113, SiloStatus.Dead);
        dead.IAmAliveTime = DateTime.UtcNow.AddHours(-2);
        Assert.True(await table.InsertRow(dead, alive.Version.Next()));
        await table.CleanupDefunctSiloEntries(DateTimeOffset.UtcNow.AddHours(-1));
        MembershipTableData cleaned = await table.ReadAll();
        Assert.Equal([a.SiloAddress], cleaned.Members.Select(m => m.Item1.SiloAddress));

        // Another cluster in the same database sees none of it; deleting this one leaves it empty.
        PostgresMembershipTable other = Table(database, "pg-other-" + Guid.NewGuid().ToString("N")[..6]);
        await other.InitializeMembershipTable(true);
        Assert.Empty((await other.ReadAll()).Members);
        await table.DeleteMembershipTableEntries(clusterId);
        Assert.Empty((await table.ReadAll()).Members);
    }

    /// <summary>2 embedding silos + 1 front end as real processes, membership in PostgreSQL: scores equal the single-node model's.</summary>
    [PostgresFact]
    public async Task A_cluster_with_membership_in_postgres_ranks_like_one_node()
    {
        await using LoopbackCluster cluster = await LoopbackCluster.StartWithPostgresAsync(log, Postgres.RequireUrl());
        ScoredRequest[] requests = RankLoad.Requests(cluster.ModelDirectory, 20, seed: 5);
        await cluster.WarmUpAsync(requests);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < requests.Length; i++)
        {
            RankOutcome o = await RankLoad.RankOnceAsync(cluster.Http, requests[i], i, clock);
            Assert.True(o.Status == HttpStatusCode.OK && !o.WrongScores, RankLoad.Describe(o));
        }

        // The client found its gateway through the table; the shards live on the embedding silos only.
        Dictionary<string, ShardStatus> shards = await cluster.ShardStatusAsync();
        Assert.Equal(3 * LoopbackCluster.ShardsPerTable, shards.Count);
        Assert.All(shards.Values, s => Assert.StartsWith("embedding-", cluster.HostOf(s)?.Name ?? s.Silo, StringComparison.Ordinal));

        await using NpgsqlDataSource database = NpgsqlDataSource.Create(ClusterChoice.Parse(Postgres.RequireUrl()).Postgres!);
        MembershipTableData rows = await Table(database, cluster.ClusterId).ReadAll();
        log.WriteLine(string.Join(Environment.NewLine, rows.Members.Select(m => m.Item1.ToFullString())));
        Assert.Equal(3, rows.Members.Count(m => m.Item1.Status == SiloStatus.Active));
    }

    private static PostgresMembershipTable Table(NpgsqlDataSource database, string clusterId) =>
        new(database, Options.Create(new ClusterOptions { ClusterId = clusterId, ServiceId = "recsys" }));

    private static MembershipEntry Entry(int port, SiloStatus status)
    {
        DateTime now = DateTime.UtcNow;
        return new MembershipEntry
        {
            SiloAddress = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), 42),
            Status = status,
            ProxyPort = port + 100,
            HostName = "host-" + port,
            SiloName = "silo-" + port,
            RoleName = "embedding",
            UpdateZone = 1,
            FaultZone = 2,
            StartTime = now.AddSeconds(-10),
            IAmAliveTime = now,
            SuspectTimes = [],
        };
    }

    private static void AssertSameEntry(MembershipEntry expected, MembershipEntry actual)
    {
        Assert.Equal(expected.SiloAddress, actual.SiloAddress);
        Assert.Equal(expected.Status, actual.Status);
        Assert.Equal(expected.ProxyPort, actual.ProxyPort);
        Assert.Equal(expected.HostName, actual.HostName);
        Assert.Equal(expected.SiloName, actual.SiloName);
        Assert.Equal(expected.RoleName, actual.RoleName);
        Assert.Equal(expected.UpdateZone, actual.UpdateZone);
        Assert.Equal(expected.FaultZone, actual.FaultZone);
        // PostgreSQL keeps microseconds; .NET ticks are 100 ns.
        Assert.Equal(Micros(expected.StartTime), Micros(actual.StartTime));
        Assert.Equal(Micros(expected.IAmAliveTime), Micros(actual.IAmAliveTime));
        Assert.Equal(
            (expected.SuspectTimes ?? []).Select(t => (t.Item1, t.Item2.ToUniversalTime())),
            (actual.SuspectTimes ?? []).Select(t => (t.Item1, t.Item2.ToUniversalTime())));
    }

    private static long Micros(DateTime time) => time.ToUniversalTime().Ticks / 10;
}
