using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Hosting;
using Recsys.EmbeddingGrains.Loading;
using Recsys.EmbeddingGrains.Placement;
using Recsys.EmbeddingGrains.Sharding;
using Xunit.Abstractions;

namespace Recsys.EmbeddingGrains.Tests;

[Collection(ShardClusterCollection.Name)]
public sealed class ShardGrainTests(ShardCluster fixture, ITestOutputHelper log)
{
    private IEmbeddingShardGrain Shard(string model, string table, int shard) =>
        fixture.Grains.GetGrain<IEmbeddingShardGrain>(ShardKey.Format(model, "1", table, shard));

    /// <summary>What a front end does: split by ShardMap, call every shard, add the partial sums.</summary>
    private async Task<float[]> Lookup(string model, TestTable table, long[] ids, int[] offsets, float[]? weights)
    {
        var map = new ShardMap(table.Rows, table.Shards);
        PooledLookupRequest[] split = map.Split(ids, offsets, weights);
        PooledLookupResult[] partials = await Task.WhenAll(split.Select((r, s) => Shard(model, table.Name, s).Lookup(r)));
        var sum = new float[(offsets.Length - 1) * table.Dim];
        foreach (PooledLookupResult p in partials)
        {
            Assert.Equal(offsets.Length - 1, p.Bags);
            Assert.Equal(table.Dim, p.Dim);
            for (int i = 0; i < sum.Length; i++) sum[i] += p.Pooled[i];
        }
        return sum;
    }

    [Fact]
    public async Task Pooled_results_equal_the_local_embedding_bag_for_every_row_format()
    {
        var rng = new Random(21);
        for (int k = 0; k < ShardCluster.Formats.Length; k++)
        {
            TestTable table = ShardCluster.Formats[k];
            for (int trial = 0; trial < 3; trial++)
            {
                (long[] ids, int[] offsets, float[]? weights) = TestModels.Request(rng, table.Rows, bags: 32, maxBag: 25, weighted: trial == 1);
                float[] expected = TestModels.Reference(fixture.FormatValues[k], table, ids, offsets, weights);
                TestModels.AssertClose(expected, await Lookup("formats", table, ids, offsets, weights), $"{table.Name} trial {trial}");
            }
        }
        // Shards loaded from the repository reported their rows to their silo's progress counter
        // (shards that moved after a silo stopped recovered a checkpoint instead and have no entry).
        var entries = fixture.Cluster.Silos.Where(s => s.IsActive)
            .SelectMany(s => s.ServiceProvider.GetRequiredService<ShardLoadProgress>().Shards)
            .Where(e => e.Key.StartsWith("formats/", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(entries);
        foreach ((string key, ShardLoadProgress.Entry entry) in entries)
        {
            (_, _, string name, int shard) = ShardKey.Parse(key);
            TestTable table = ShardCluster.Formats.Single(t => t.Name == name);
            Assert.Equal(new ShardMap(table.Rows, table.Shards).SlotsIn(shard), entry.Total);
            Assert.Equal(entry.Total, entry.Loaded);
        }
    }

    [Fact]
    public async Task Shards_activate_only_on_embedding_silos_and_spread_over_them()
    {
        string router = fixture.Cluster.Silos.Single(s => s.Name == ShardCluster.RouterSilo).SiloAddress.ToString();
        var hosts = new HashSet<string>();
        foreach (TestTable table in ShardCluster.Formats)
        {
            for (int s = 0; s < table.Shards; s++)
            {
                ShardStatus status = await Shard("formats", table.Name, s).GetStatus();
                Assert.NotEqual(router, status.Silo);
                hosts.Add(status.Silo);
            }
        }
        Assert.Equal(2, hosts.Count);
    }

    [Fact]
    public async Task A_shard_with_a_quarter_budget_serves_from_disk_and_equals_the_resident_run()
    {
        TestTable table = ShardCluster.Spill[0];
        var rng = new Random(8);
        for (int trial = 0; trial < 4; trial++)
        {
            (long[] ids, int[] offsets, float[]? weights) = TestModels.Request(rng, table.Rows, bags: 64, maxBag: 40, weighted: trial % 2 == 0);
            float[] resident = await Lookup("resident", table, ids, offsets, weights);
            float[] spilled = await Lookup("spill", table, ids, offsets, weights);
            TestModels.AssertClose(resident, spilled, $"trial {trial}");
            TestModels.AssertClose(TestModels.Reference(fixture.SpillValues, table, ids, offsets, weights), resident, $"reference trial {trial}");
        }
        for (int s = 0; s < table.Shards; s++)
        {
            ShardStatus res = await Shard("resident", table.Name, s).GetStatus();
            ShardStatus spill = await Shard("spill", table.Name, s).GetStatus();
            Assert.True(res.FullyResident);
            Assert.Equal(res.Rows, res.ResidentRows);
            Assert.False(spill.FullyResident);
            Assert.InRange(spill.ResidentRows, 1, spill.Rows * 3 / 4 / 4 + 4);
            Assert.True(spill.DiskReads > 0, $"shard {s}: no read went to FASTER's disk log");
            Assert.True(spill.CacheMisses > 0 && spill.CacheHits > 0, $"shard {s}: hits {spill.CacheHits}, misses {spill.CacheMisses}");
            Assert.Equal(spill.Lookups, spill.CacheHits + spill.CacheMisses);
        }
    }

    [Fact]
    public async Task Bad_requests_fail_with_a_clear_message_and_the_shard_keeps_serving()
    {
        TestTable table = ShardCluster.Formats[0]; // 2000 rows, 3 shards
        IEmbeddingShardGrain shard1 = Shard("formats", table.Name, 1);
        async Task<string> Fails(PooledLookupRequest request) => (await Assert.ThrowsAnyAsync<ArgumentException>(() => shard1.Lookup(request))).Message;

        Assert.Contains("outside the table's rows [0, 2000)", await Fails(new() { Ids = [1, 2002], Offsets = [0, 2] }));
        Assert.Contains("belongs to shard 2", await Fails(new() { Ids = [1, 5], Offsets = [0, 2] }));
        Assert.Contains("not monotonic", await Fails(new() { Ids = [1, 4], Offsets = [0, 2, 1, 2] }));
        Assert.Contains("must equal the number of Ids (2)", await Fails(new() { Ids = [1, 4], Offsets = [0, 1, 3] }));
        Assert.Contains("Weights has 3 entries for 2 Ids", await Fails(new() { Ids = [1, 4], Offsets = [0, 2], Weights = [1, 2, 3] }));
        Assert.Contains("Values has 3 floats", (await Assert.ThrowsAnyAsync<ArgumentException>(() => shard1.UpsertRows(new() { Ids = [1], Values = [1, 2, 3] }))).Message);

        Exception unknown = await Assert.ThrowsAnyAsync<Exception>(() => Shard("formats", "nope", 0).GetStatus());
        Assert.Contains("unknown table 'nope'", unknown.ToString());

        float[] expected = TestModels.Reference(fixture.FormatValues[0], table, [1, 4, 1000], [0, 3], null);
        PooledLookupResult ok = await shard1.Lookup(new() { Ids = [1, 4, 1000], Offsets = [0, 3] });
        TestModels.AssertClose(expected, ok.Pooled, "valid call after bad ones");
    }

    [Fact]
    public async Task Upserts_are_visible_to_the_next_lookup_and_survive_deactivation()
    {
        TestTable table = ShardCluster.Updates[0];
        float[] values = (float[])fixture.UpdateValues.Clone();
        long[] ids = [0, 2, 4, 598, 599, 1, 3];
        int[] offsets = [0, 4, 7];
        TestModels.AssertClose(TestModels.Reference(values, table, ids, offsets, null), await Lookup("updates", table, ids, offsets, null), "before");

        var rng = new Random(9);
        long[] upsertIds = [2, 598, 3];
        float[] upsertValues = Enumerable.Range(0, upsertIds.Length * table.Dim).Select(_ => (float)(rng.NextDouble() * 6 - 3)).ToArray();
        var map = new ShardMap(table.Rows, table.Shards);
        foreach (IGrouping<int, int> group in Enumerable.Range(0, upsertIds.Length).GroupBy(i => map.ShardOf(upsertIds[i])))
        {
            await Shard("updates", table.Name, group.Key).UpsertRows(new RowUpsert
            {
                Ids = group.Select(i => upsertIds[i]).ToArray(),
                Values = group.SelectMany(i => upsertValues.Skip(i * table.Dim).Take(table.Dim)).ToArray(),
            });
        }
        for (int i = 0; i < upsertIds.Length; i++) upsertValues.AsSpan(i * table.Dim, table.Dim).CopyTo(values.AsSpan((int)upsertIds[i] * table.Dim));
        float[] expected = TestModels.Reference(values, table, ids, offsets, null);
        TestModels.AssertClose(expected, await Lookup("updates", table, ids, offsets, null), "after upsert");

        // Deactivation checkpoints; the next call reactivates from that checkpoint, not from the model.
        for (int s = 0; s < table.Shards; s++) await fixture.Cluster.DeactivateAsync(Shard("updates", table.Name, s));
        TestModels.AssertClose(expected, await Lookup("updates", table, ids, offsets, null), "after deactivation");
        for (int s = 0; s < table.Shards; s++) Assert.True((await Shard("updates", table.Name, s).GetStatus()).RecoveredFromCheckpoint);
    }

    [Fact]
    public async Task Stopping_the_silo_of_a_shard_moves_it_with_its_upserts()
    {
        TestTable table = ShardCluster.Moves[0];
        float[] values = (float[])fixture.MoveValues.Clone();
        var rng = new Random(13);
        (long[] ids, int[] offsets, float[]? weights) = TestModels.Request(rng, table.Rows, bags: 20, maxBag: 15, weighted: true);
        TestModels.AssertClose(TestModels.Reference(values, table, ids, offsets, weights), await Lookup("moves", table, ids, offsets, weights), "before");

        // A shard on an embedding silo other than the primary (which hosts the test cluster's
        // membership and cannot stop). Placement hashes silo addresses, which change every run:
        // 12 shards make "all on the primary" a 1-in-4096 event instead of 1 in 16 with 4.
        var statuses = await Task.WhenAll(Enumerable.Range(0, table.Shards).Select(s => Shard("moves", table.Name, s).GetStatus()));
        var secondary = fixture.Cluster.Silos.FirstOrDefault(h => h.IsActive && h.Name != "Silo_0" && statuses.Any(st => st.Silo == h.SiloAddress.ToString()));
        Assert.True(secondary is not null, "every shard of 'moves' landed on the primary silo");
        int moved = Array.FindIndex(statuses, st => st.Silo == secondary.SiloAddress.ToString());

        long id = moved; // slot 0 of the moved shard
        float[] row = Enumerable.Range(0, table.Dim).Select(i => (float)(i - 5)).ToArray();
        await Shard("moves", table.Name, moved).UpsertRows(new RowUpsert { Ids = [id], Values = row });
        row.CopyTo(values.AsSpan((int)id * table.Dim));
        long[] withUpdated = [.. ids, id];
        int[] offsetsUpdated = [.. offsets, ids.Length + 1]; // one more bag holding only the upserted row
        float[]? weightsUpdated = weights is null ? null : [.. weights, 0.5f];
        float[] expected = TestModels.Reference(values, table, withUpdated, offsetsUpdated, weightsUpdated);

        await fixture.Cluster.StopSiloAsync(secondary);
        try
        {
            TestModels.AssertClose(expected, await Lookup("moves", table, withUpdated, offsetsUpdated, weightsUpdated), "after the silo stopped");
            ShardStatus after = await Shard("moves", table.Name, moved).GetStatus();
            Assert.NotEqual(secondary.SiloAddress.ToString(), after.Silo);
            Assert.True(after.RecoveredFromCheckpoint);
        }
        finally
        {
            await fixture.StartEmbeddingSiloAsync();
        }
    }

    [Fact]
    public async Task Killing_the_silo_of_a_shard_reloads_it_elsewhere_with_identical_results()
    {
        TestTable table = ShardCluster.Kills[0];
        var rng = new Random(17);
        (long[] ids, int[] offsets, float[]? weights) = TestModels.Request(rng, table.Rows, bags: 24, maxBag: 20, weighted: false);
        float[] expected = TestModels.Reference(fixture.KillValues, table, ids, offsets, weights);
        TestModels.AssertClose(expected, await Lookup("kills", table, ids, offsets, weights), "before");

        var statuses = await Task.WhenAll(Enumerable.Range(0, table.Shards).Select(s => Shard("kills", table.Name, s).GetStatus()));
        var victim = fixture.Cluster.Silos.FirstOrDefault(h => h.IsActive && h.Name != "Silo_0" && statuses.Any(st => st.Silo == h.SiloAddress.ToString()));
        Assert.NotNull(victim);
        int[] lost = Enumerable.Range(0, table.Shards).Where(s => statuses[s].Silo == victim.SiloAddress.ToString()).ToArray();

        await fixture.Cluster.KillSiloAsync(victim);
        try
        {
            // No deactivation ran: the shards come back from the checkpoint their first load wrote.
            await fixture.Cluster.WaitForLivenessToStabilizeAsync();
            TestModels.AssertClose(expected, await Lookup("kills", table, ids, offsets, weights), "after the kill");
            foreach (int s in lost)
            {
                ShardStatus after = await Shard("kills", table.Name, s).GetStatus();
                Assert.NotEqual(victim.SiloAddress.ToString(), after.Silo);
                Assert.True(after.RecoveredFromCheckpoint);
            }
        }
        finally
        {
            await fixture.StartEmbeddingSiloAsync();
        }
    }

    /// <summary>
    /// A third embedding silo joins while lookups run: every shard it wins by rendezvous hashing
    /// moves to it (active shards included, no restart of the others), the rest stay, and every
    /// lookup before, during and after the moves equals the reference.
    /// </summary>
    [Fact]
    public async Task A_joining_embedding_silo_takes_the_active_shards_it_wins_and_lookups_stay_right()
    {
        TestTable table = ShardCluster.Joins[0];
        var rng = new Random(29);
        var requests = Enumerable.Range(0, 4).Select(i => TestModels.Request(rng, table.Rows, bags: 16, maxBag: 12, weighted: i % 2 == 1)).ToArray();
        float[][] expected = requests.Select(r => TestModels.Reference(fixture.JoinValues, table, r.Ids, r.Offsets, r.Weights)).ToArray();
        async Task AllRight(string when)
        {
            for (int i = 0; i < requests.Length; i++)
            {
                TestModels.AssertClose(expected[i], await Lookup("joins", table, requests[i].Ids, requests[i].Offsets, requests[i].Weights), $"{when}, request {i}");
            }
        }
        await AllRight("before the join");
        IEmbeddingShardGrain[] shards = Enumerable.Range(0, table.Shards).Select(s => Shard("joins", table.Name, s)).ToArray();
        ShardStatus[] before = await Task.WhenAll(shards.Select(s => s.GetStatus()));
        long movedBefore = MovedSoFar();

        InProcessSiloHandle? joined = null;
        using var stopLoad = new CancellationTokenSource();
        Task<int> load = Task.Run(async () =>
        {
            int rounds = 0;
            while (!stopLoad.IsCancellationRequested)
            {
                await AllRight($"during the moves, round {rounds}");
                rounds++;
            }
            return rounds;
        });
        try
        {
            joined = await fixture.Cluster.StartAdditionalSiloAsync();
            await fixture.WaitForBalanceAsync(TimeSpan.FromSeconds(60));
            await stopLoad.CancelAsync();
            int rounds = await load;

            SiloAddress[] hosts = fixture.EmbeddingSilos.Select(h => h.SiloAddress).ToArray();
            Assert.Equal(3, hosts.Length);
            ShardStatus[] after = await Task.WhenAll(shards.Select(s => s.GetStatus()));
            SiloAddress[] preferred = shards.Select(s => ShardRanking.Preferred(s.GetGrainId().ToString(), hosts)!).ToArray();
            int won = preferred.Count(p => p.Equals(joined.SiloAddress));
            log.WriteLine($"{won} of {table.Shards} shards moved to the joined silo {joined.SiloAddress} during {rounds} lookup rounds; " +
                $"before {string.Join(", ", before.GroupBy(s => s.Silo).Select(g => $"{g.Key} {g.Count()}"))}; after {string.Join(", ", after.GroupBy(s => s.Silo).Select(g => $"{g.Key} {g.Count()}"))}");
            Assert.True(rounds > 0, "no lookup round ran during the moves");
            for (int s = 0; s < table.Shards; s++)
            {
                Assert.Equal(preferred[s], after[s].SiloAddress);
                // Shards the new silo did not win never moved: same silo, no reactivation.
                if (!preferred[s].Equals(joined.SiloAddress)) Assert.False(after[s].RecoveredFromCheckpoint, $"shard {s} stayed but was reactivated");
                else Assert.True(after[s].RecoveredFromCheckpoint, $"shard {s} moved but reloaded instead of recovering its checkpoint");
            }
            Assert.InRange(won, 1, table.Shards - 1);
            Assert.True(MovedSoFar() - movedBefore >= won, $"rebalancers moved {MovedSoFar() - movedBefore} shards, the joined silo holds {won}");
            await AllRight("after the moves");
        }
        finally
        {
            await stopLoad.CancelAsync();
            await Task.WhenAny(load);
            if (joined is not null)
            {
                await fixture.Cluster.StopSiloAsync(joined);
                await fixture.WaitForBalanceAsync(TimeSpan.FromSeconds(60));
            }
        }
    }

    private long MovedSoFar() => fixture.Cluster.Silos.Where(s => s.IsActive).Sum(s => s.ServiceProvider.GetRequiredService<ShardRebalancer>().Moved);

    /// <summary>
    /// A model's shards all activated at once: every silo loaded at most its cap at a time, and the
    /// shards that waited for their turn serve right.
    /// </summary>
    [Fact]
    public async Task Shard_loads_take_turns_within_the_per_silo_cap_and_all_serve_right()
    {
        TestTable table = ShardCluster.Joins[0];
        // A model version of its own, so all 24 shards are fresh loads now, not activations from earlier tests.
        float[] values = TestModels.Write(fixture.Models, "turns", "1", ShardCluster.Joins, seed: 7)[0];
        ShardStatus[] statuses = await Task.WhenAll(Enumerable.Range(0, table.Shards).Select(s => Shard("turns", table.Name, s).GetStatus()));
        Assert.All(statuses, s => Assert.False(s.RecoveredFromCheckpoint));
        foreach (InProcessSiloHandle silo in fixture.EmbeddingSilos)
        {
            ShardActivationGate gate = silo.ServiceProvider.GetRequiredService<ShardActivationGate>();
            log.WriteLine($"{silo.Name}: peak {gate.Peak} loads at once, {gate.Waited} activations waited for a turn, {gate.Inside} loading now");
            Assert.Equal(ShardCluster.ActivationCap, gate.Capacity);
            Assert.InRange(gate.Peak, 1, ShardCluster.ActivationCap);
            Assert.Equal(0, gate.Inside);
        }
        var rng = new Random(37);
        (long[] ids, int[] offsets, float[]? weights) = TestModels.Request(rng, table.Rows, bags: 40, maxBag: 30, weighted: true);
        TestModels.AssertClose(TestModels.Reference(values, table, ids, offsets, weights), await Lookup("turns", table, ids, offsets, weights), "after turns");
    }
}

/// <summary>Roles asked of the silos themselves, as the rebalancer does when Orleans' metadata cache missed a silo.</summary>
[Collection(ShardClusterCollection.Name)]
public sealed class SiloRolesTests(ShardCluster fixture)
{
    /// <summary>A metadata cache that never received anything: every remote silo's roles must come from asking it.</summary>
    private sealed class EmptyMetadataCache : Orleans.Runtime.MembershipService.SiloMetadata.ISiloMetadataCache
    {
        public Orleans.Runtime.MembershipService.SiloMetadata.SiloMetadata GetSiloMetadata(SiloAddress siloAddress) =>
            Orleans.Runtime.MembershipService.SiloMetadata.SiloMetadata.Empty;
    }

    [Fact]
    public async Task Silos_missing_from_the_metadata_cache_are_asked_and_only_embedding_silos_host_shards()
    {
        InProcessSiloHandle router = fixture.Cluster.Silos.Single(s => s.IsActive && s.Name == ShardCluster.RouterSilo);
        var silos = new EmbeddingSilos(new EmptyMetadataCache(), Microsoft.Extensions.Options.Options.Create(new EmbeddingShardOptions { Roles = ["router"] }));
        SiloAddress[] active = fixture.Cluster.Silos.Where(s => s.IsActive).Select(s => s.SiloAddress).ToArray();
        SiloAddress local = router.SiloAddress;
        Assert.Empty(silos.Filter(active, local));

        int answered = await silos.ResolveMissingAsync(active, local, router.ServiceProvider.GetRequiredService<IGrainFactory>());

        Assert.Equal(active.Length - 1, answered);
        Assert.Equal(fixture.EmbeddingSilos.Select(s => s.SiloAddress).Order(), silos.Filter(active, local).Order());
        // A silo that is not a member fails placement of its roles grain: no answer, asked again next time.
        SiloAddress gone = SiloAddress.New(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1), 1);
        Assert.Equal(0, await silos.ResolveMissingAsync([gone], local, router.ServiceProvider.GetRequiredService<IGrainFactory>()));
        Assert.False(silos.HostsShards(gone, local));
    }

    [Fact]
    public async Task A_silo_told_another_ones_roles_counts_it_as_a_shard_host_until_it_leaves_membership()
    {
        InProcessSiloHandle silo0 = fixture.Cluster.Silos.Single(s => s.IsActive && s.Name == "Silo_0");
        EmbeddingSilos known = silo0.ServiceProvider.GetRequiredService<EmbeddingSilos>();
        // An address no metadata cache has: only the announcement can make it a shard host.
        SiloAddress stranger = SiloAddress.New(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 2), 2);
        Assert.False(known.HostsShards(stranger, silo0.SiloAddress));
        Assert.Contains(stranger, known.Unknown([stranger], silo0.SiloAddress));

        await fixture.Grains.GetGrain<ISiloRolesGrain>(ShardHostKey.Format(silo0.SiloAddress)).Announce(stranger, ["embedding"]);

        Assert.True(known.HostsShards(stranger, silo0.SiloAddress));
        Assert.Empty(known.Unknown([stranger], silo0.SiloAddress));
        known.Forget(fixture.Cluster.Silos.Select(s => s.SiloAddress).ToHashSet());
        Assert.False(known.HostsShards(stranger, silo0.SiloAddress));
    }
}
