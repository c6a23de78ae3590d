using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.EmbeddingGrains.Hosting;
using Recsys.EmbeddingGrains.Loading;
using Recsys.EmbeddingGrains.Placement;
using Recsys.EmbeddingGrains.Serving;
using Recsys.EmbeddingGrains.Sharding;

namespace Recsys.EmbeddingGrains.Grains;

/// <summary>
/// Hosts one <see cref="EmbeddingShard"/> (one replica of a shard when its table has replicas:
/// each replica is its own grain with its own store, loaded with the same rows). Activation recovers the shard's FASTER checkpoint when
/// one exists for this model version, else loads the rows from the model repository and
/// checkpoints. Not reentrant: lookups and upserts take turns, which is what keeps the row cache
/// and FASTER consistent without locks. A bad request throws ArgumentException before any state
/// changes, so the activation stays healthy for the next call.
/// </summary>
[EmbeddingRolePlacement]
internal sealed partial class EmbeddingShardGrain(
    IOptions<EmbeddingShardOptions> options,
    SiloRowBudget budget,
    ShardActivationGate gate,
    LocalShards localShards,
    ShardLoadProgress progress,
    LocalResidentShards residentShards,
    ILocalSiloDetails silo,
    ILogger<EmbeddingShardGrain> logger) : Grain, IEmbeddingShardGrain
{
    private readonly EmbeddingShardOptions _options = options.Value;
    private EmbeddingShard? _shard;
    // Set while a co-hosted front end may pool this (resident) shard in place; see LocalResidentShards.
    private ResidentShardReader? _reader;
    private long _grant;
    private bool _recovered;
    private string _key = "";
    private int _replica;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _key = this.GetPrimaryKeyString();
        if (!_options.HostsShards) throw new InvalidOperationException($"silo {silo.SiloAddress} has roles [{string.Join(", ", _options.Roles)}], not '{EmbeddingShardOptions.EmbeddingRole}': shard {_key} must not activate here");
        (string model, string version, string tableName, int shardIndex, int replica) = ShardKey.ParseReplica(_key);
        var repository = new ModelRepository(_options.ModelsDirectory);
        ModelSpec spec = repository.LoadSpec(model, version);
        DlrmSpec dlrm = spec.RequireDlrm();
        int tableIndex = dlrm.TableIndex(tableName);
        if (tableIndex < 0)
        {
            throw new ArgumentException($"unknown table '{tableName}': model {model}/{version} has tables [{string.Join(", ", dlrm.Tables.Select(t => t.Name))}]", "key");
        }
        TableSpec table = dlrm.Tables[tableIndex];
        if (shardIndex >= table.Shards) throw new ArgumentException($"shard {shardIndex} does not exist: table '{tableName}' of {model}/{version} has {table.Shards} shards", "key");
        _replica = replica;
        if (replica >= table.Replicas) throw new ArgumentException($"replica {replica} does not exist: table '{tableName}' of {model}/{version} has {table.Replicas} replica(s) per shard (model.json \"replicas\")", "key");

        var map = new ShardMap(table.Rows, table.Shards);
        long slots = map.SlotsIn(shardIndex);
        // Each replica owns its FASTER store: two activations must never open the same folder. Replica
        // 0 keeps the folder shards had before replicas; a sibling's is beside it, never inside (a wipe of one must not touch the other).
        string folder = replica == 0 ? shardIndex.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{shardIndex}-r{replica}");
        string directory = Path.Combine(_options.DataDirectory, model, version, tableName, folder);
        var manifest = ShardManifest.For(model, version, tableName, shardIndex, table.Shards, table.Rows, table.Dim, table.Storage);

        // Loads take turns per silo (ShardActivationGate): a failover or rebalance storm would
        // otherwise start every shard at once and time all of them out.
        using ShardActivationGate.Lease turn = await gate.EnterAsync(cancellationToken);
        bool recover = ShardManifest.TryRead(directory) == manifest;
        if (!recover && Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        _grant = budget.Acquire(model, tableName, slots * table.RowBytes);
        EmbeddingShard shard = EmbeddingShard.Open(map, shardIndex, table.Storage, table.Dim, _grant, directory);
        try
        {
            if (recover)
            {
                await shard.RecoverAsync();
                await Task.Run(shard.WarmFromStore, cancellationToken);
                _recovered = true;
                LogRecovered(logger, _key, slots, shard.IsResident);
            }
            else
            {
                string weightsPath = Path.Combine(spec.Directory, dlrm.WeightsFile);
                ShardLoadProgress.Entry entry = progress.Start(_key, slots);
                // Quantizing and writing rows is CPU work: keep it off the silo's scheduler threads.
                await Task.Run(() =>
                {
                    using SafeTensorsFile weights = SafeTensorsFile.Open(weightsPath);
                    ShardLoader.Load(shard, weights, DlrmSpec.EmbeddingWeightName(tableIndex), entry, logger, _key, cancellationToken);
                }, cancellationToken);
                await shard.CheckpointAsync();
                manifest.Write(directory);
            }
        }
        catch
        {
            shard.Dispose();
            budget.Release(_grant);
            throw;
        }
        _shard = shard;
        if (shard.IsResident) OpenToLocalReaders(shard);
        localShards.Add(this.GetGrainId(), _key);
        this.RegisterGrainTimer(CheckpointIfDirtyAsync, new GrainTimerCreationOptions(_options.CheckpointInterval, _options.CheckpointInterval) { Interleave = false, KeepAlive = false });
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_shard is null) return;
        CloseToLocalReaders();
        try
        {
            if (_shard.HasUncheckpointedWrites) await _shard.CheckpointAsync();
        }
        finally
        {
            _shard.Dispose();
            _shard = null;
            budget.Release(_grant);
            // Only now: a rebalancer waiting for this shard to leave may let the next activation open the same store.
            localShards.Remove(this.GetGrainId());
        }
    }

    public Task<bool> Rebalance(SiloAddress from)
    {
        ArgumentNullException.ThrowIfNull(from);
        if (!from.Equals(silo.SiloAddress)) return Task.FromResult(false);
        this.DeactivateOnIdle();
        return Task.FromResult(true);
    }

    public async Task<PooledLookupResult> Lookup(PooledLookupRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Ids is null) throw new ArgumentException("Ids is null", nameof(request));
        if (request.Offsets is null || request.Offsets.Length < 1) throw new ArgumentException("Offsets needs Bags + 1 entries (at least one)", nameof(request));
        EmbeddingShard shard = _shard!;
        int bags = request.Offsets.Length - 1;
        var pooled = new float[(long)bags * shard.Dim];
        await shard.LookupAsync(request.Ids, request.Offsets, request.Weights, pooled);
        return new PooledLookupResult { Bags = bags, Dim = shard.Dim, Pooled = pooled, Silo = silo.SiloAddress, Replica = _replica };
    }

    /// <summary>Batches above this many rows are written off the scheduler: FASTER may wait for a page flush.</summary>
    private const int InlineUpsertRows = 256;

    public async Task UpsertRows(RowUpsert upsert)
    {
        ArgumentNullException.ThrowIfNull(upsert);
        if (upsert.Ids is null || upsert.Values is null) throw new ArgumentException("Ids and Values must not be null", nameof(upsert));
        EmbeddingShard shard = _shard!;
        ResidentShardReader? reader = _reader;
        void Write()
        {
            if (reader is null) shard.Upsert(upsert.Ids, upsert.Values);
            else reader.Exclusive(() => shard.Upsert(upsert.Ids, upsert.Values));
        }
        if (upsert.Ids.Length <= InlineUpsertRows) Write();
        else await Task.Run(Write);
    }

    /// <summary>How often a shard read in place checks whether it was read (and so must stay active).</summary>
    private static readonly TimeSpan LocalReadKeepAlive = TimeSpan.FromMinutes(1);

    private void OpenToLocalReaders(EmbeddingShard shard)
    {
        _reader = new ResidentShardReader(shard);
        residentShards.Add(_key, _reader);
        // Reads in place send no grain calls, so Orleans would see the shard idle and collect it.
        this.RegisterGrainTimer(KeepAliveWhileReadLocally, new GrainTimerCreationOptions(LocalReadKeepAlive, LocalReadKeepAlive) { Interleave = true, KeepAlive = false });
    }

    private Task KeepAliveWhileReadLocally(CancellationToken cancellationToken)
    {
        if (_reader is { } reader && reader.TakeReads() > 0) DelayDeactivation(LocalReadKeepAlive * 3);
        return Task.CompletedTask;
    }

    /// <summary>Unlisted first (no new readers), then waits for the reads in flight: the shard's memory is freed after.</summary>
    private void CloseToLocalReaders()
    {
        if (_reader is not { } reader) return;
        residentShards.Remove(_key, reader);
        reader.Close();
        _reader = null;
    }

    public Task<ShardStatus> GetStatus()
    {
        EmbeddingShard shard = _shard!;
        return Task.FromResult(new ShardStatus
        {
            Key = _key,
            Silo = silo.SiloAddress.ToString(),
            SiloAddress = silo.SiloAddress,
            Rows = shard.Slots,
            ResidentRows = shard.ResidentRows,
            Lookups = shard.Lookups,
            CacheHits = shard.CacheHits,
            CacheMisses = shard.CacheMisses,
            RecoveredFromCheckpoint = _recovered,
            DiskReads = shard.DiskReads,
            FullyResident = shard.IsResident,
        });
    }

    public Task Checkpoint() => _shard!.CheckpointAsync();

    private Task CheckpointIfDirtyAsync(CancellationToken cancellationToken) =>
        _shard is { HasUncheckpointedWrites: true } shard ? shard.CheckpointAsync() : Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Shard {Shard}: recovered {Rows} rows from its FASTER checkpoint (resident: {Resident})")]
    private static partial void LogRecovered(ILogger logger, string shard, long rows, bool resident);
}
