using System.Net;
using Recsys.Router.Batching;
using Recsys.Router.Scheduling;

namespace Recsys.Router.Hosting;

/// <summary>What a silo of this node does: every role, only the HTTP front end, or only embedding shards.</summary>
[Flags]
public enum SiloRole
{
    Frontend = 1,
    Embedding = 2,
    All = Frontend | Embedding,
}

/// <summary>Everything `recsys serve` configures; defaults are a single node on loopback.</summary>
public sealed record ServeOptions
{
    public string ModelsDirectory { get; init; } = "models";
    public string DataDirectory { get; init; } = "data";
    public IPAddress Listen { get; init; } = IPAddress.Loopback;

    /// <summary>HTTP port; 0 picks a free one (tests).</summary>
    public int Port { get; init; } = 8080;

    public SiloRole Role { get; init; } = SiloRole.All;
    public int SiloPort { get; init; } = 11111;
    public int GatewayPort { get; init; } = 30000;

    /// <summary>Localhost clustering: null makes this silo the primary, else the primary's silo endpoint to join.</summary>
    public IPEndPoint? PrimarySilo { get; init; }

    /// <summary>
    /// StackExchange.Redis configuration ("host:port[,password=...]") of the membership table;
    /// null keeps localhost clustering (one primary silo, no external store).
    /// </summary>
    public string? RedisClustering { get; init; }

    /// <summary>
    /// Npgsql connection string ("Host=...;Port=...;Username=...;Database=...") of a PostgreSQL
    /// membership table (<see cref="Membership.PostgresMembershipTable"/>); used when RedisClustering is null.
    /// </summary>
    public string? PostgresClustering { get; init; }

    /// <summary>The address other silos and clients reach this silo at; its silo and gateway ports listen on it.</summary>
    public IPAddress AdvertiseAddress { get; init; } = IPAddress.Loopback;

    /// <summary>How fast a dead silo is found: suspected after MissedProbesLimit probes of ProbeTimeout each go unanswered.</summary>
    public ClusterTiming Timing { get; init; } = new();

    /// <summary>Which grain directory the cluster uses; every silo of a cluster must use the same one.</summary>
    public GrainDirectoryKind GrainDirectory { get; init; } = GrainDirectoryKind.Default;

    /// <summary>
    /// Floor for the .NET thread pool's worker threads (raised only, never lowered). The pool
    /// starts with one thread per core and adds about two a second once all are busy; a silo
    /// reactivating shards after a failure blocks one thread per shard while FASTER reads the
    /// checkpoint metadata synchronously, and with one thread per core that stalled a survivor for
    /// 12-27 s on 2 cores. 32 threads cost only their stacks while idle.
    /// </summary>
    public int MinThreadPoolThreads { get; init; } = 32;

    /// <summary>PFX file of the certificate every silo presents and expects (silo-to-silo and gateway TLS); null = plain TCP.</summary>
    public string? TlsCertificatePath { get; init; }

    public string? TlsCertificatePassword { get; init; }

    public string ClusterId { get; init; } = "recsys";
    public string ServiceId { get; init; } = "recsys";

    /// <summary>This silo's budget for resident embedding rows; the rest stays in FASTER on disk.</summary>
    public long EmbeddingMemoryBytes { get; init; } = 512L << 20;

    public BatchingOptions Batching { get; init; } = new();

    /// <summary>Workers of the compute scheduler that runs ranking, vision and translation work (0: one per core).</summary>
    public int ComputeWorkers { get; init; }

    /// <summary>The compute scheduler's class objectives, weights, reserve and admission (docs/DEPLOY.md, "Compute scheduler").</summary>
    public SchedulerOptions Scheduler { get; init; } = new();

    /// <summary>A request not answered by then gets 504 and its work is dropped.</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Bodies larger than this get 413 before they are read.</summary>
    public long MaxBodyBytes { get; init; } = 16L << 20;

    /// <summary>Samples one request may carry (the batcher may still merge several requests).</summary>
    public int MaxRequestSamples { get; init; } = 4096;

    /// <summary>Key for the admin endpoints (X-Api-Key header); null disables them.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Write the kaggle-small demo model when the repository holds no model.</summary>
    public bool WriteDemoModelWhenEmpty { get; init; } = true;

    /// <summary>How long shutdown waits for in-flight requests and shard checkpoints.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>The grain directory: where each shard's current activation is registered.</summary>
public enum GrainDirectoryKind
{
    /// <summary>
    /// Orleans' default in-cluster directory (a hash ring over all silos, eventually consistent).
    /// Its weakness: a silo that dies takes its part of the ring with it, so every activation
    /// registered there (shards living on healthy silos too) is deactivated and reactivates.
    /// </summary>
    Default,

    /// <summary>
    /// Orleans' strongly consistent directory (DistributedGrainDirectory, marked experimental in
    /// Orleans 10): a dead silo's range is rebuilt from the survivors, so only its own shards move;
    /// their re-registration waits for a safety lease (GrainDirectoryOptions.RangeLeaseDuration, 30 s
    /// from the estimated failure time, about 6 s after the death declaration here).
    /// </summary>
    Consistent,
}

/// <summary>Failure-detection and call timeouts of the Orleans cluster.</summary>
public sealed record ClusterTiming
{
    /// <summary>
    /// One liveness probe; Orleans adapts it between half and four times this. Orleans' default is
    /// 5 s; 2 s finds a dead silo in ~6 s, and stays clear of false deaths on a starved 2-core host
    /// (1 s with 2 probes declared a busy survivor dead here: with two silos left one vote is enough).
    /// </summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Missed probes before a silo votes its peer dead (Orleans' default, 3).</summary>
    public int MissedProbesLimit { get; init; } = 3;

    /// <summary>How often each silo re-reads the membership table (Orleans' default is 60 s; gossip usually beats it).</summary>
    public TimeSpan TableRefresh { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A grain call with no answer fails after this. Kept long: a shard's first call waits for the
    /// shard to load; ranking requests give up earlier on their own deadline.
    /// </summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
