namespace Recsys.EmbeddingGrains.Hosting;

/// <summary>Settings of the embedding shards a silo hosts (bound by `recsys serve`).</summary>
public sealed class EmbeddingShardOptions
{
    public const string EmbeddingRole = "embedding";

    /// <summary>
    /// Root of the shards' FASTER stores: {DataDirectory}/{model}/{version}/{table}/{shard}/.
    /// Point every silo at shared storage to let a shard that moves to another silo recover its
    /// upserts; with per-silo folders a moved shard reloads from the model repository instead.
    /// </summary>
    public string DataDirectory { get; set; } = Path.Combine(Path.GetTempPath(), "recsys-shards");

    /// <summary>The model repository: {ModelsDirectory}/{model}/{version}/model.json.</summary>
    public string ModelsDirectory { get; set; } = "models";

    /// <summary>
    /// Bytes of row memory (flat arrays, hot-row caches and FASTER in-memory logs) for all shards of
    /// this silo. Shards take grants first come, first served: a shard gets all its rows if that much
    /// is left, else what is left (at least <see cref="MinShardGrantBytes"/>) and serves from FASTER.
    /// </summary>
    public long MemoryBudgetBytes { get; set; } = DefaultMemoryBudget();

    /// <summary>The least grant a shard receives even when the silo budget is spent.</summary>
    public long MinShardGrantBytes { get; set; } = 1 << 20;

    /// <summary>
    /// Per-shard grant caps by "{model}" or "{model}/{table}" (the longer key wins), e.g. to keep a
    /// huge table's shards from taking the whole silo budget.
    /// </summary>
    public Dictionary<string, long> ShardGrantCaps { get; } = new(StringComparer.Ordinal);

    /// <summary>Upserts become durable at the next checkpoint; also taken at deactivation.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Shard activations of this silo that load or recover at once; the rest wait their turn. A
    /// failover or rebalance can send a dozen shards to one silo together: all loading at once they
    /// share the cores and disk, and every one of them may outlast the callers' timeouts; in turns,
    /// the first ones serve soon and the rest follow.
    /// </summary>
    public int MaxConcurrentActivations { get; set; } = 2;

    /// <summary>Move active shards onto a silo that joins and wins them (see ShardRebalancer); off leaves them where they are.</summary>
    public bool Rebalance { get; set; } = true;

    /// <summary>Shards one silo moves at a time: each move costs a checkpoint here and a recovery (or load) there.</summary>
    public int MaxConcurrentMoves { get; set; } = 2;

    /// <summary>
    /// How long membership must stay unchanged before shards move: time for the new silo's metadata
    /// (its roles) to reach the front ends, which place a moved shard by their own view.
    /// </summary>
    public TimeSpan RebalanceDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often a silo checks its shards without a membership change (a silo's roles may arrive after its membership).</summary>
    public TimeSpan RebalanceInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>This silo's roles; shards activate only on silos whose roles include "embedding".</summary>
    public string[] Roles { get; set; } = [EmbeddingRole];

    public bool HostsShards => Roles.Contains(EmbeddingRole, StringComparer.OrdinalIgnoreCase);

    /// <summary>Half the memory the runtime may use (the container limit if there is one).</summary>
    public static long DefaultMemoryBudget() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;
}
