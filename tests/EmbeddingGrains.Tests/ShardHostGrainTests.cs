using System.Net;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Sharding;

namespace Recsys.EmbeddingGrains.Tests;

/// <summary>The per-silo lookup entry: one message in, every slice's partial sums out, in order.</summary>
[Collection(ShardClusterCollection.Name)]
public sealed class ShardHostGrainTests(ShardCluster fixture)
{
    private IEmbeddingShardGrain Shard(string table, int shard) =>
        fixture.Grains.GetGrain<IEmbeddingShardGrain>(ShardKey.Format("formats", "1", table, shard));

    [Fact]
    public async Task A_host_answers_all_slices_of_every_table_in_order_local_or_not()
    {
        var rng = new Random(31);
        var shards = new List<IEmbeddingShardGrain>();
        var slices = new List<PooledLookupRequest>();
        var tables = new List<(int Format, long[] Ids, int[] Offsets, float[]? Weights, int First)>();
        for (int k = 0; k < ShardCluster.Formats.Length; k++)
        {
            TestTable table = ShardCluster.Formats[k];
            (long[] ids, int[] offsets, float[]? weights) = TestModels.Request(rng, table.Rows, bags: 12, maxBag: 9, weighted: k % 2 == 1);
            tables.Add((k, ids, offsets, weights, slices.Count));
            PooledLookupRequest[] split = new ShardMap(table.Rows, table.Shards).Split(ids, offsets, weights);
            for (int s = 0; s < split.Length; s++)
            {
                shards.Add(Shard(table.Name, s));
                slices.Add(split[s]);
            }
        }
        ShardStatus[] statuses = await Task.WhenAll(shards.Select(s => s.GetStatus()));
        SiloAddress[] silos = statuses.Select(s => s.SiloAddress!).Distinct().ToArray();
        Assert.True(silos.Length >= 2, $"setup: the shards sit on {silos.Length} silo(s)");

        // Each embedding silo's host gets every slice, those of the other silo's shards included.
        foreach (SiloAddress silo in silos)
        {
            SiloLookupResult answer = await fixture.Grains.GetGrain<IShardHostGrain>(ShardHostKey.Format(silo))
                .Lookup(new SiloLookupRequest { Shards = [.. shards], Slices = [.. slices] });

            Assert.Equal(slices.Count, answer.Parts.Length);
            for (int i = 0; i < answer.Parts.Length; i++) Assert.Equal(statuses[i].SiloAddress, answer.Parts[i].Silo);
            foreach (var (k, ids, offsets, weights, first) in tables)
            {
                TestTable table = ShardCluster.Formats[k];
                var sum = new float[(offsets.Length - 1) * table.Dim];
                for (int s = 0; s < table.Shards; s++)
                {
                    PooledLookupResult part = answer.Parts[first + s];
                    Assert.Equal(offsets.Length - 1, part.Bags);
                    Assert.Equal(table.Dim, part.Dim);
                    for (int j = 0; j < sum.Length; j++) sum[j] += part.Pooled[j];
                }
                TestModels.AssertClose(TestModels.Reference(fixture.FormatValues[k], table, ids, offsets, weights), sum, $"{table.Name} via host {silo}");
            }
        }
    }

    [Fact]
    public async Task A_host_keyed_by_a_silo_outside_the_cluster_is_refused_not_placed_elsewhere()
    {
        var outsider = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 9), 4242);
        IShardHostGrain host = fixture.Grains.GetGrain<IShardHostGrain>(ShardHostKey.Format(outsider));

        var error = await Assert.ThrowsAnyAsync<Exception>(() => host.Lookup(new SiloLookupRequest { Shards = [Shard("fp32", 0)], Slices = [new PooledLookupRequest { Ids = [0], Offsets = [0, 1] }] }));

        Assert.Contains(outsider.ToString(), error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mismatched_shards_and_slices_are_a_request_error_naming_both_counts()
    {
        SiloAddress silo = (await Shard("fp32", 0).GetStatus()).SiloAddress!;
        IShardHostGrain host = fixture.Grains.GetGrain<IShardHostGrain>(ShardHostKey.Format(silo));

        var error = await Assert.ThrowsAsync<ArgumentException>(() => host.Lookup(new SiloLookupRequest { Shards = [Shard("fp32", 0), Shard("fp32", 1)], Slices = [new PooledLookupRequest()] }));

        Assert.Contains("2 shards for 1 slices", error.Message, StringComparison.Ordinal);
    }
}
