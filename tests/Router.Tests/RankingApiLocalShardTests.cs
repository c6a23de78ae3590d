using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Recsys.DenseCompute.Dlrm;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Serving;
using Recsys.Router.Hosting;
using Recsys.Router.Repository;
using Recsys.Router.Serving;
using static Recsys.Router.Tests.HttpHelpers;

namespace Recsys.Router.Tests;

/// <summary>
/// One node with every role: the front end pools the resident shards of its own silo in place
/// (LocalPooling) instead of calling their grains. Scores must equal the grain-call path exactly
/// (same partial sums, added in the same order) and the PyTorch fixtures; an upsert through the
/// grain is seen by in-place reads whole, never half-written.
/// </summary>
public sealed class RankingApiLocalShardTests(LocalShardNode node) : IClassFixture<LocalShardNode>
{
    private const float PyTorchTolerance = 2e-5f;

    [Theory]
    [InlineData("dot")]
    [InlineData("weighted")]
    [InlineData("mean")]
    public async Task Scores_pooled_in_place_equal_grain_calls_and_the_pytorch_fixture(string fixture)
    {
        ServedModel model = await node.Server.Registry!.AcquireAsync(fixture, null);
        try
        {
            RankBatch batch = new RankRequestJson(model.Spec).Parse(Encoding.UTF8.GetBytes(Request(fixture)));
            LookupBatch lookup = LookupBatch.Merge([RankInput.From(batch)], model.Spec.DenseFeatures);
            for (int t = 0; t < model.Spec.Tables.Length; t++)
            {
                for (int s = 0; s < model.Spec.Tables[t].Shards; s++) Assert.NotNull(model.LocalShard(t, s));
            }

            long calls = model.Metrics.DirectShardCalls;
            long reads = model.Metrics.LocalShardReads;
            float[] inPlace = await RankingEngine.RunAsync(model, lookup);
            Assert.Equal(calls, model.Metrics.DirectShardCalls);
            long readsInPlace = model.Metrics.LocalShardReads - reads;
            Assert.True(readsInPlace > 0, "reads in place must be counted in /metrics");

            model.ReadLocalShardsInPlace = false;
            float[] viaGrains = await RankingEngine.RunAsync(model, lookup);
            Assert.True(model.Metrics.DirectShardCalls > calls, "with in-place reads off the engine must call the shard grains");
            Assert.Equal(readsInPlace, model.Metrics.LocalShardReads - reads);
            // One read in place per shard slice the grain path sends as a call.
            Assert.Equal(model.Metrics.DirectShardCalls - calls, readsInPlace);

            Assert.Equal(viaGrains, inPlace);
            AssertClose(Expected(fixture), inPlace, PyTorchTolerance);
        }
        finally
        {
            model.ReadLocalShardsInPlace = true;
            model.Release();
        }
    }

    [Fact]
    public async Task Upserts_through_the_grain_are_read_in_place_whole()
    {
        // C3 has 4 shards: row 5 lives in shard 1 (5 mod 4).
        string key = ShardKey.Format(LocalShardNode.UpsertModel, "1", "C3", 1);
        IEmbeddingShardGrain grain = node.Server.Services.GetRequiredService<IGrainFactory>().GetGrain<IEmbeddingShardGrain>(key);
        await grain.GetStatus();
        ResidentShardReader reader = node.Server.Services.GetRequiredService<LocalResidentShards>().Find(key)
            ?? throw new InvalidOperationException($"shard {key} is not listed as resident on the node");
        var original = new float[4];
        Assert.True(reader.TryLookup([5], [0, 1], null, original));
        float[] a = [1, 2, 3, 4], b = [-5, -6, -7, -8];

        Task writer = Task.Run(async () =>
        {
            for (int i = 0; i < 300; i++) await grain.UpsertRows(new RowUpsert { Ids = [5], Values = i % 2 == 0 ? a : b });
        });
        var seen = new float[4];
        int reads = 0;
        while (!writer.IsCompleted)
        {
            Assert.True(reader.TryLookup([5], [0, 1], null, seen));
            Assert.True(seen.SequenceEqual(original) || seen.SequenceEqual(a) || seen.SequenceEqual(b), $"read {string.Join(", ", seen)}: not a whole row");
            reads++;
        }
        await writer;

        Assert.True(reader.TryLookup([5], [0, 1], null, seen));
        Assert.Equal(b, seen);
        Assert.True(reads > 0);
        // The grain's own lookup agrees with the in-place one.
        PooledLookupResult viaGrain = await grain.Lookup(new PooledLookupRequest { Ids = [5], Offsets = [0, 1] });
        Assert.Equal(b, viaGrain.Pooled);
    }

    [Fact]
    public void A_bad_id_read_in_place_is_refused_naming_it()
    {
        string key = ShardKey.Format("dot", "1", "C3", 1);
        ResidentShardReader reader = node.Server.Services.GetRequiredService<LocalResidentShards>().Find(key)
            ?? throw new InvalidOperationException($"shard {key} is not listed as resident on the node");

        var e = Assert.Throws<ArgumentException>(() => reader.TryLookup([6], [0, 1], null, new float[4]));
        Assert.Contains("Ids[0] = 6", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>A single node (every role) serving the dot, weighted and mean fixtures, and a copy of dot that a test upserts into.</summary>
public sealed class LocalShardNode : IAsyncLifetime
{
    public const string UpsertModel = "dot-upserts";

    private TestServer _server = null!;

    public RecsysServer Server => _server.Server;

    public async Task InitializeAsync() =>
        _server = await TestServer.StartAsync("local-shards", models =>
        {
            // 3 shards for C2 keeps the division path covered next to the power-of-two mask.
            TestModels.WriteDlrm("dot", Path.Combine(models, "dot", "1"), [2, 3, 4]);
            TestModels.WriteDlrm("dot", Path.Combine(models, UpsertModel, "1"), [2, 3, 4]);
            TestModels.WriteDlrm("weighted", Path.Combine(models, "weighted", "1"), [2]);
            TestModels.WriteDlrm("mean", Path.Combine(models, "mean", "1"), [3]);
        }, options => options with { Deadline = TimeSpan.FromSeconds(20) });

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}
