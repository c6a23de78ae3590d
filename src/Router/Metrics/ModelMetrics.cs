using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Recsys.Router.Metrics;

/// <summary>Where a ranking call spends its time; each stage is one latency histogram per model.</summary>
public enum Stage
{
    /// <summary>From arrival at the batcher to the start of its batch.</summary>
    Queue,
    /// <summary>From the first shard call sent to the last partial sum received.</summary>
    Lookup,
    /// <summary>Bottom MLP, merge of partials, interaction and top MLP.</summary>
    Dense,
    /// <summary>From the body read to the answer written.</summary>
    Total,
}

/// <summary>Counters and histograms of one model (all versions), exported at /metrics.</summary>
public sealed class ModelMetrics
{
    private readonly LatencyHistogram[] _stages;
    private readonly ConcurrentDictionary<int, StrongBox<long>> _byStatus = new();
    private readonly ConcurrentDictionary<string, SiloBytes> _bySilo = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Table, int Shard, int Replica), StrongBox<long>> _byReplica = new();
    private long _replicaFailovers;
    private long _shardCalls, _bytesSent, _bytesReceived, _samples, _siloCalls, _directShardCalls, _siloFallbacks, _siloHedges, _fallbackShardCalls, _localShardReads;

    public ModelMetrics(string model)
    {
        Model = model;
        _stages = Enum.GetValues<Stage>().Select(_ => new LatencyHistogram(LatencyHistogram.SecondsBuckets)).ToArray();
    }

    public string Model { get; }
    public LatencyHistogram BatchSize { get; } = new(LatencyHistogram.SizeBuckets);
    public long ShardCalls => Interlocked.Read(ref _shardCalls);
    public long BytesSent => Interlocked.Read(ref _bytesSent);
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);
    public long Samples => Interlocked.Read(ref _samples);

    /// <summary>Lookup messages to a silo's shard host, each carrying all of a batch's slices on that silo.</summary>
    public long SiloCalls => Interlocked.Read(ref _siloCalls);

    /// <summary>Slices sent straight to their shard by choice: the shard's silo unknown, or the only slice on its silo.</summary>
    public long DirectShardCalls => Interlocked.Read(ref _directShardCalls);

    /// <summary>Silo messages that failed (silo gone, placement refused, a shard failed): their slices were sent again per shard.</summary>
    public long SiloFallbacks => Interlocked.Read(ref _siloFallbacks);

    /// <summary>Silo messages slow enough that their slices also went per shard, alongside (first whole answer wins).</summary>
    public long SiloHedges => Interlocked.Read(ref _siloHedges);

    /// <summary>Per-shard calls made for a failed or hedged silo message.</summary>
    public long FallbackShardCalls => Interlocked.Read(ref _fallbackShardCalls);

    /// <summary>Shard lookups pooled in place on this silo (resident shards co-hosted with the front end): no grain call, no bytes on the wire.</summary>
    public long LocalShardReads => Interlocked.Read(ref _localShardReads);

    public LatencyHistogram StageHistogram(Stage stage) => _stages[(int)stage];

    public void Observe(Stage stage, TimeSpan elapsed) => _stages[(int)stage].Observe(elapsed.TotalSeconds);

    public void CountRequest(int status) => Interlocked.Increment(ref _byStatus.GetOrAdd(status, _ => new StrongBox<long>()).Value);

    public void CountBatch(int samples)
    {
        BatchSize.Observe(samples);
        Interlocked.Add(ref _samples, samples);
    }

    /// <param name="silo">The silo that answered (its address as text), when known: bytes are also counted per silo.</param>
    public void CountShardCall(long bytesSent, long bytesReceived, string? silo = null)
    {
        Interlocked.Increment(ref _shardCalls);
        Interlocked.Add(ref _bytesSent, bytesSent);
        Interlocked.Add(ref _bytesReceived, bytesReceived);
        if (silo is null) return;
        SiloBytes bytes = _bySilo.GetOrAdd(silo, _ => new SiloBytes());
        Interlocked.Add(ref bytes.Sent, bytesSent);
        Interlocked.Add(ref bytes.Received, bytesReceived);
    }

    /// <summary>Lookup bytes per answering silo: (silo, sent, received), ordered by silo.</summary>
    public IReadOnlyList<(string Silo, long Sent, long Received)> BytesBySilo() =>
        [.. _bySilo.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, Interlocked.Read(ref kv.Value.Sent), Interlocked.Read(ref kv.Value.Received)))];

    private sealed class SiloBytes
    {
        public long Sent;
        public long Received;
    }

    public void CountSiloCall() => Interlocked.Increment(ref _siloCalls);

    public void CountDirectShardCall() => Interlocked.Increment(ref _directShardCalls);

    public void CountSiloFallback() => Interlocked.Increment(ref _siloFallbacks);

    public void CountSiloHedge() => Interlocked.Increment(ref _siloHedges);

    public void CountFallbackShardCall() => Interlocked.Increment(ref _fallbackShardCalls);

    public void CountLocalShardRead() => Interlocked.Increment(ref _localShardReads);

    /// <summary>The counter of calls sent to one replica of a replicated table's shard (kept by the front end's replica choice).</summary>
    public StrongBox<long> ReplicaCalls(string table, int shard, int replica) => _byReplica.GetOrAdd((table, shard, replica), _ => new StrongBox<long>());

    /// <summary>Calls to replicated shards, per (table, shard, replica), ordered.</summary>
    public IReadOnlyList<(string Table, int Shard, int Replica, long Calls)> ReplicaCallCounts() =>
        [.. _byReplica.OrderBy(kv => kv.Key.Table, StringComparer.Ordinal).ThenBy(kv => kv.Key.Shard).ThenBy(kv => kv.Key.Replica)
            .Select(kv => (kv.Key.Table, kv.Key.Shard, kv.Key.Replica, Interlocked.Read(ref kv.Value.Value)))];

    /// <summary>Calls sent to a sibling replica because the one asked first failed or was slow.</summary>
    public long ReplicaFailovers => Interlocked.Read(ref _replicaFailovers);

    public void CountReplicaFailover() => Interlocked.Increment(ref _replicaFailovers);

    public IEnumerable<(int Status, long Count)> RequestsByStatus() =>
        _byStatus.OrderBy(kv => kv.Key).Select(kv => (kv.Key, Interlocked.Read(ref kv.Value.Value)));
}

/// <summary>All models' metrics; a model's entry is created on its first request or load.</summary>
public sealed class ServingMetrics
{
    private readonly ConcurrentDictionary<string, ModelMetrics> _models = new(StringComparer.Ordinal);

    public ModelMetrics For(string model) => _models.GetOrAdd(model, m => new ModelMetrics(m));

    public IEnumerable<ModelMetrics> Models => _models.Values.OrderBy(m => m.Model, StringComparer.Ordinal);
}
