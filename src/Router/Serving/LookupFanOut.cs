using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Repository;

namespace Recsys.Router.Serving;

/// <summary>
/// Sends a batch's shard slices with as few messages as the shard map allows: all slices whose
/// shards live on one silo go in one message to that silo's shard host; a slice whose shard's silo
/// is unknown (never reported, or forgotten after a failure), or that is alone on its silo, goes
/// straight to its shard. Every answer names the silo it came from and corrects the map, so a
/// shard that moved is found again by the next batch. Calls go out before the first await: the
/// caller runs the bottom MLP while they are in flight. With <see cref="ServedModel.LookupPerSilo"/>
/// off every slice goes straight to its shard (the map is still kept). A replicated shard's slice goes
/// to the replica with the fewest calls outstanding from this front end (<see cref="ShardReplicas"/>),
/// and a failed or slow call to a sibling at once (<see cref="ShardCallRetry"/>).
/// </summary>
public static class LookupFanOut
{
    /// <param name="Replica">The replica chosen for the per-silo path (where it lives decides the message); direct calls choose their own.</param>
    private readonly record struct Slice(int Table, int Shard, int Replica, PooledLookupRequest Request);

    /// <param name="pooledLocally">Tables the caller pools in place (<see cref="LocalPooling"/>): no call is sent for them and their partials stay null.</param>
    /// <returns>partials[t][s]: shard s's partial sums for table t; null when shard s got no ids.</returns>
    public static async Task<PooledLookupResult?[][]> RunAsync(ServedModel model, LookupBatch batch, CancellationToken giveUp, bool[]? pooledLocally = null)
    {
        TableSpec[] tables = model.Spec.Tables;
        var partials = new PooledLookupResult?[tables.Length][];
        var slices = new List<Slice>(tables.Length * 2);
        for (int t = 0; t < tables.Length; t++)
        {
            partials[t] = new PooledLookupResult?[tables[t].Shards];
            if (pooledLocally is not null && pooledLocally[t]) continue;
            PooledLookupRequest?[] perShard = ShardSplitter.Split(batch.Tables[t], tables[t].Rows, tables[t].Shards);
            for (int s = 0; s < perShard.Length; s++)
            {
                if (perShard[s] is { } request) slices.Add(new Slice(t, s, 0, request));
            }
        }

        // Few silos: a list beats a dictionary.
        var bySilo = new List<(SiloAddress Silo, List<int> Slices)>(4);
        var pending = new List<Task>(8);
        for (int i = 0; i < slices.Count; i++)
        {
            SiloAddress? silo = null;
            if (model.LookupPerSilo)
            {
                int replica = model.Replicas(slices[i].Table, slices[i].Shard).Choose();
                slices[i] = slices[i] with { Replica = replica };
                silo = model.Locations.Get(slices[i].Table, slices[i].Shard, replica);
            }
            if (silo is null)
            {
                pending.Add(DirectAsync(model, slices[i], partials, giveUp));
                continue;
            }
            int g = bySilo.FindIndex(e => e.Silo.Equals(silo));
            if (g < 0) bySilo.Add((silo, [i]));
            else bySilo[g].Slices.Add(i);
        }
        foreach ((SiloAddress silo, List<int> onSilo) in bySilo)
        {
            // One slice gains nothing from the host's extra hop.
            pending.Add(onSilo.Count == 1
                ? DirectAsync(model, slices[onSilo[0]], partials, giveUp)
                : OnSiloAsync(model, silo, onSilo.Select(i => slices[i]).ToArray(), partials, giveUp));
        }
        await Task.WhenAll(pending).ConfigureAwait(false);

        foreach (Slice slice in slices) Count(model, slice.Request, partials[slice.Table][slice.Shard]!);
        return partials;
    }

    private static async Task DirectAsync(ServedModel model, Slice slice, PooledLookupResult?[][] partials, CancellationToken giveUp)
    {
        model.Metrics.CountDirectShardCall();
        PooledLookupResult result = await ShardCallRetry.LookupAsync(model.Replicas(slice.Table, slice.Shard), slice.Request, giveUp).ConfigureAwait(false);
        model.Locations.Record(slice.Table, slice.Shard, result.Replica, result.Silo);
        partials[slice.Table][slice.Shard] = result;
    }

    private static async Task OnSiloAsync(ServedModel model, SiloAddress silo, Slice[] onSilo, PooledLookupResult?[][] partials, CancellationToken giveUp)
    {
        var request = new SiloLookupRequest
        {
            Shards = Array.ConvertAll(onSilo, s => model.Replicas(s.Table, s.Shard)[s.Replica]),
            Slices = Array.ConvertAll(onSilo, s => s.Request),
        };
        ShardReplicas[] shards = Array.ConvertAll(onSilo, s => model.Replicas(s.Table, s.Shard));
        int[] replicas = Array.ConvertAll(onSilo, s => s.Replica);
        (PooledLookupResult[] parts, bool hostFailed) = await SiloCallRetry.LookupAsync(model.Host(silo), request, shards, replicas, model.Metrics, giveUp).ConfigureAwait(false);
        // The silo's host failed: until its shards report again, reach them one by one.
        if (hostFailed) model.Locations.Forget(silo);
        for (int i = 0; i < onSilo.Length; i++)
        {
            model.Locations.Record(onSilo[i].Table, onSilo[i].Shard, parts[i].Replica, parts[i].Silo);
            partials[onSilo[i].Table][onSilo[i].Shard] = parts[i];
        }
    }

    private static void Count(ServedModel model, PooledLookupRequest request, PooledLookupResult result)
    {
        long sent = request.Ids.Length * 8L + request.Offsets.Length * 4L + (request.Weights?.Length ?? 0) * 4L;
        model.Metrics.CountShardCall(sent, result.Pooled.Length * 4L + 8, result.Silo?.ToString());
    }
}
