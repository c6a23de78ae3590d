using System.Net;
using Recsys.DenseCompute.Dlrm;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;
using Recsys.Router.Serving;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

/// <summary>
/// The per-silo lookup path on a front end + 2 embedding silos: scores equal the in-process model,
/// one host message per silo per batch, and stale shard -> silo entries still give right scores.
/// </summary>
public sealed class SiloFanOutTests(FanOutCluster cluster) : IClassFixture<FanOutCluster>
{
    // Shard partials are added in another order than one in-process bag sum: float32 rounding only.
    private const float SameModelTolerance = 2e-6f;

    [Fact]
    public async Task Scores_equal_the_in_process_model_with_one_message_per_silo_per_batch()
    {
        ServedModel model = await cluster.ServeAsync();
        try
        {
            using DlrmModel reference = DlrmModel.Load(cluster.VersionDirectory);
            Assert.Equal(FanOutCluster.ShardsPerTable.Sum(), model.Locations.Known);
            for (int round = 0; round < 3; round++)
            {
                RankBatch batch = cluster.RandomBatch(seed: 100 + round);
                Expected messages = await ExpectedMessagesAsync(batch);
                Assert.True(messages.SiloCalls == 2, $"setup: {messages.SiloCalls} silos hold 2+ touched shards; the test needs both");
                long silo0 = model.Metrics.SiloCalls, direct0 = model.Metrics.DirectShardCalls, slices0 = model.Metrics.ShardCalls;

                float[] scores = await RankingEngine.RunAsync(model, LookupBatch.Merge([RankInput.From(batch)], cluster.Spec.DenseFeatures));

                AssertClose(reference.Score(batch), scores, SameModelTolerance);
                Assert.Equal(messages.SiloCalls, model.Metrics.SiloCalls - silo0);
                Assert.Equal(messages.Direct, model.Metrics.DirectShardCalls - direct0);
                Assert.Equal(messages.Slices, model.Metrics.ShardCalls - slices0);
            }
            Assert.Equal(0, model.Metrics.SiloFallbacks);
            // Many slices, two messages: what the per-silo path is for.
            Assert.True(model.Metrics.ShardCalls >= 5 * model.Metrics.SiloCalls, $"{model.Metrics.ShardCalls} slices in {model.Metrics.SiloCalls} silo messages");
        }
        finally
        {
            model.Retire();
        }
    }

    [Fact]
    public async Task A_shard_listed_on_the_wrong_silo_answers_through_that_host_and_the_map_is_corrected()
    {
        ServedModel model = await cluster.ServeAsync();
        try
        {
            using DlrmModel reference = DlrmModel.Load(cluster.VersionDirectory);
            RankBatch batch = cluster.RandomBatch(seed: 7);
            ShardStatus[][] before = await StatusesAsync();
            SiloAddress[] silos = before.SelectMany(t => t).Select(s => s.SiloAddress!).Distinct().ToArray();
            Assert.Equal(2, silos.Length);
            // Every shard of table 2 listed on the silo it is not on: as after a move the map has not seen yet.
            for (int s = 0; s < before[2].Length; s++)
            {
                model.Locations.Record(2, s, silos.Single(x => !x.Equals(before[2][s].SiloAddress)));
            }

            float[] scores = await RankingEngine.RunAsync(model, LookupBatch.Merge([RankInput.From(batch)], cluster.Spec.DenseFeatures));

            AssertClose(reference.Score(batch), scores, SameModelTolerance);
            Assert.Equal(0, model.Metrics.SiloFallbacks);
            AssertMapMatches(model, before, Touched(batch));
        }
        finally
        {
            model.Retire();
        }
    }

    [Fact]
    public async Task A_host_on_a_silo_that_is_not_a_member_falls_back_per_shard_and_the_map_is_corrected()
    {
        ServedModel model = await cluster.ServeAsync();
        try
        {
            using DlrmModel reference = DlrmModel.Load(cluster.VersionDirectory);
            RankBatch batch = cluster.RandomBatch(seed: 8);
            ShardStatus[][] before = await StatusesAsync();
            // A silo that never joined (a dead one's address looks the same to the placement).
            var gone = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 9), 12345);
            for (int t = 0; t < before.Length; t++)
            {
                for (int s = 0; s < before[t].Length; s++) model.Locations.Record(t, s, gone);
            }

            float[] scores = await RankingEngine.RunAsync(model, LookupBatch.Merge([RankInput.From(batch)], cluster.Spec.DenseFeatures));

            AssertClose(reference.Score(batch), scores, SameModelTolerance);
            // One message to the absent silo's host, then every slice per shard: as a fallback, or
            // as a hedge if the refusal took longer than the hedge delay on a busy machine.
            int slices = Touched(batch).Sum(t => t.Count(x => x));
            Assert.Equal(1, model.Metrics.SiloCalls);
            Assert.Equal(1, model.Metrics.SiloFallbacks + model.Metrics.SiloHedges);
            Assert.Equal(slices, model.Metrics.FallbackShardCalls);
            AssertMapMatches(model, before, Touched(batch));

            // The next batch goes per silo again, no fallback.
            long fallbacks = model.Metrics.SiloFallbacks, siloCalls = model.Metrics.SiloCalls;
            scores = await RankingEngine.RunAsync(model, LookupBatch.Merge([RankInput.From(batch)], cluster.Spec.DenseFeatures));
            AssertClose(reference.Score(batch), scores, SameModelTolerance);
            Assert.Equal(fallbacks, model.Metrics.SiloFallbacks);
            Assert.Equal((await ExpectedMessagesAsync(batch)).SiloCalls, model.Metrics.SiloCalls - siloCalls);
        }
        finally
        {
            model.Retire();
        }
    }

    [Fact]
    public async Task Deactivated_shards_reactivate_behind_their_host_and_scores_stay_right()
    {
        ServedModel model = await cluster.ServeAsync();
        try
        {
            using DlrmModel reference = DlrmModel.Load(cluster.VersionDirectory);
            RankBatch batch = cluster.RandomBatch(seed: 9);
            for (int s = 0; s < FanOutCluster.ShardsPerTable[1]; s++) await cluster.Cluster.DeactivateAsync(cluster.Shard(1, s));

            float[] scores = await RankingEngine.RunAsync(model, LookupBatch.Merge([RankInput.From(batch)], cluster.Spec.DenseFeatures));

            AssertClose(reference.Score(batch), scores, SameModelTolerance);
            AssertMapMatches(model, await StatusesAsync(), Touched(batch));
        }
        finally
        {
            model.Retire();
        }
    }

    private readonly record struct Expected(int SiloCalls, int Direct, int Slices);

    /// <summary>Counted from the shards' own status and the ids (owner = id mod S), not from the code under test.</summary>
    private async Task<Expected> ExpectedMessagesAsync(RankBatch batch)
    {
        ShardStatus[][] statuses = await StatusesAsync();
        bool[][] touched = Touched(batch);
        var perSilo = new Dictionary<string, int>();
        int slices = 0;
        for (int t = 0; t < touched.Length; t++)
        {
            for (int s = 0; s < touched[t].Length; s++)
            {
                if (!touched[t][s]) continue;
                slices++;
                perSilo[statuses[t][s].Silo] = perSilo.GetValueOrDefault(statuses[t][s].Silo) + 1;
            }
        }
        return new Expected(perSilo.Values.Count(c => c >= 2), perSilo.Values.Count(c => c == 1), slices);
    }

    private static bool[][] Touched(RankBatch batch) => FanOutCluster.Touched(batch);

    private Task<ShardStatus[][]> StatusesAsync() => cluster.StatusesAsync();

    private static void AssertMapMatches(ServedModel model, ShardStatus[][] statuses, bool[][] touched)
    {
        for (int t = 0; t < statuses.Length; t++)
        {
            for (int s = 0; s < statuses[t].Length; s++)
            {
                if (touched[t][s]) Assert.Equal(statuses[t][s].SiloAddress, model.Locations.Get(t, s));
            }
        }
    }
}

/// <summary>A stopped embedding silo: its shards move, the batch that finds out falls back per shard, the next goes per silo again.</summary>
public sealed class SiloFanOutLossTests(FanOutCluster cluster) : IClassFixture<FanOutCluster>
{
    [Fact]
    public async Task After_a_silo_stops_its_shards_answer_from_the_survivor_and_the_map_follows()
    {
        ServedModel model = await cluster.ServeAsync();
        try
        {
            using DlrmModel reference = DlrmModel.Load(cluster.VersionDirectory);
            RankBatch batch = cluster.RandomBatch(seed: 11);
            LookupBatch lookup = LookupBatch.Merge([RankInput.From(batch)], cluster.Spec.DenseFeatures);
            HttpHelpers.AssertClose(reference.Score(batch), await RankingEngine.RunAsync(model, lookup), 2e-6f);
            Assert.InRange(model.Metrics.SiloCalls, 1, 2);

            // The embedding silo holding more of the batch's shards stops (gracefully: its shards deactivate).
            ShardStatus[][] before = await cluster.StatusesAsync();
            bool[][] touched = FanOutCluster.Touched(batch);
            var onSilo = cluster.Cluster.Silos.Where(h => h.Name != FanOutCluster.FrontEndSilo)
                .Select(h => (Silo: h, Slices: before.SelectMany((st, t) => st.Where((x, s) => touched[t][s] && x.SiloAddress!.Equals(h.SiloAddress))).Count()))
                .OrderByDescending(x => x.Slices).First();
            Assert.True(onSilo.Slices >= 2, $"setup: the busiest embedding silo holds only {onSilo.Slices} touched shards");
            var victim = onSilo.Silo;
            await cluster.Cluster.StopSiloAsync(victim);
            ModelMetrics m = model.Metrics;
            long fallbacks = m.SiloFallbacks + m.SiloHedges, fallbackCalls = m.FallbackShardCalls;

            HttpHelpers.AssertClose(reference.Score(batch), await RankingEngine.RunAsync(model, lookup), 2e-6f);
            // The victim's host failed (or, on a busy machine, was hedged first): its slices went per shard.
            Assert.True(m.SiloFallbacks + m.SiloHedges - fallbacks >= 1, "the stopped silo's slices did not go per shard");
            Assert.True(m.FallbackShardCalls - fallbackCalls >= onSilo.Slices, $"{m.FallbackShardCalls - fallbackCalls} per-shard calls for {onSilo.Slices} slices of the stopped silo");
            ShardStatus[][] after = await cluster.StatusesAsync();
            for (int t = 0; t < touched.Length; t++)
            {
                for (int s = 0; s < touched[t].Length; s++)
                {
                    if (!touched[t][s]) continue;
                    Assert.NotEqual(victim.SiloAddress, after[t][s].SiloAddress);
                    Assert.Equal(after[t][s].SiloAddress, model.Locations.Get(t, s));
                }
            }

            // Everything now lives on the survivor: one message for the whole batch, no fallback.
            long siloCalls = m.SiloCalls, direct = m.DirectShardCalls;
            HttpHelpers.AssertClose(reference.Score(batch), await RankingEngine.RunAsync(model, lookup), 2e-6f);
            Assert.Equal(siloCalls + 1, m.SiloCalls);
            Assert.Equal(direct, m.DirectShardCalls);
        }
        finally
        {
            model.Retire();
        }
    }
}
