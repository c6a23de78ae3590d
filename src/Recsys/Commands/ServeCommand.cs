using System.Globalization;
using System.Net;
using Recsys.Router.Batching;
using Recsys.Router.Hosting;
using Recsys.Router.Scheduling;

namespace Recsys.Cli.Commands;

/// <summary>`recsys serve`: parses options, starts the node that lives in the Router library, waits for Ctrl+C.</summary>
public static class ServeCommand
{
    public const string Usage = """
        usage: recsys serve [options]
          --models DIR            model repository (./models; the demo model is written there when empty)
          --data DIR              shard stores and checkpoints (./data)
          --port N                HTTP port (8080)
          --listen ADDR           HTTP address (127.0.0.1)
          --role R                all | frontend | embedding (all)
          --cluster C             localhost (this silo is the primary) | localhost:PORT (join the primary silo at PORT)
                                  | redis://HOST:PORT[?password=P] (membership table in Redis: any number of silos)
                                  | postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (membership table in PostgreSQL)
          --cluster-id ID         Orleans cluster id (recsys); silos with the same cluster and service id form one cluster
          --service-id ID         Orleans service id (recsys)
          --advertise ADDR        address (or host name) other silos reach this one at (127.0.0.1); silo and gateway listen on it
          --silo-port N           Orleans silo port (11111)
          --gateway-port N        Orleans gateway port (30000)
          --probe-timeout-ms N    liveness probe timeout (2000)
          --missed-probes N       missed probes before a silo is voted dead (3)
          --response-timeout-ms N grain call timeout (30000; ranking requests still end at --deadline-ms)
          --grain-directory D     default | consistent: Orleans' strongly consistent directory (experimental in
                                  Orleans 10), a dead silo takes no shards of healthy silos with it; same on every silo
          --min-threads N         thread pool floor (32): shards reactivating after a failure block a thread each
          --tls-cert FILE         PFX certificate: silo-to-silo and gateway traffic use mutual TLS with it
          --tls-password P        password of the PFX file
          --config FILE           JSON object of these options without "--", e.g. {"role": "embedding", "silo-port": 11112}
          --embedding-memory SZ   this silo's budget for resident rows, e.g. 512MB, 8GB (512MB)
          --max-batch N           samples per engine pass after dynamic batching (256)
          --max-delay-ms X        how long a batch waits for company (1)
          --queue N               requests queued per model before 429 (1024)
          --deadline-ms N         requests not answered by then get 504 (1000)
          --max-body SZ           largest request body (16MB)
          --api-key KEY           enables POST /v1/models/{name}/load with header X-Api-Key
          --compute-workers N     threads of the compute scheduler, the whole compute budget (0: one per core)
          --reserved-workers N    workers less urgent classes leave free for ranking while it has work (1; 0 disables)
        Precedence: command line > environment (RECSYS_<OPTION>, e.g. RECSYS_CLUSTER, RECSYS_SILO_PORT) > --config file > defaults.
        """;

    private static readonly string[] ValueOptions =
        ["models", "data", "port", "listen", "role", "cluster", "silo-port", "gateway-port", "embedding-memory",
         "max-batch", "max-delay-ms", "queue", "deadline-ms", "max-body", "api-key",
         "cluster-id", "service-id", "advertise", "probe-timeout-ms", "missed-probes", "response-timeout-ms", "grain-directory", "min-threads", "tls-cert", "tls-password", "config",
         "compute-workers", "reserved-workers"];

    public static Task<int> RunAsync(string[] args)
    {
        if (args.Length == 1 && args[0] is "-h" or "--help")
        {
            Console.WriteLine(Usage);
            return Task.FromResult(0);
        }
        // Parsed before the first await so option errors reach CommandLine's CliException handler.
        ServeOptions options = Parse(ServeSettings.Merge(CliOptions.Parse(args, ValueOptions), ValueOptions, Environment.GetEnvironmentVariables()));
        return ServeAsync(options);
    }

    internal static ServeOptions Parse(CliOptions o)
    {
        string role = o.GetChoice("role", "all", ["all", "frontend", "embedding"]);
        string listen = o.Get("listen", "127.0.0.1");
        if (!IPAddress.TryParse(listen, out IPAddress? address)) throw new CliException($"--listen: '{listen}' is not an IP address");
        ClusterChoice cluster = ClusterChoice.Parse(o.Get("cluster", "localhost"));
        return new ServeOptions
        {
            ModelsDirectory = o.Get("models", "models"),
            DataDirectory = o.Get("data", "data"),
            Port = o.GetInt("port", 8080, min: 0),
            Listen = address,
            Role = role switch { "frontend" => SiloRole.Frontend, "embedding" => SiloRole.Embedding, _ => SiloRole.All },
            PrimarySilo = cluster.Primary,
            RedisClustering = cluster.Redis,
            PostgresClustering = cluster.Postgres,
            ClusterId = o.Get("cluster-id", "recsys"),
            ServiceId = o.Get("service-id", "recsys"),
            AdvertiseAddress = ServeSettings.ResolveAddress("advertise", o.Get("advertise", "127.0.0.1")),
            Timing = new ClusterTiming
            {
                ProbeTimeout = TimeSpan.FromMilliseconds(o.GetInt("probe-timeout-ms", 2000, min: 50)),
                MissedProbesLimit = o.GetInt("missed-probes", 3, min: 1),
                ResponseTimeout = TimeSpan.FromMilliseconds(o.GetInt("response-timeout-ms", 30000, min: 100)),
            },
            GrainDirectory = o.GetChoice("grain-directory", "default", ["default", "consistent"]) == "consistent" ? GrainDirectoryKind.Consistent : GrainDirectoryKind.Default,
            MinThreadPoolThreads = o.GetInt("min-threads", 32, min: 1),
            TlsCertificatePath = o.Get("tls-cert"),
            TlsCertificatePassword = o.Get("tls-password"),
            SiloPort = o.GetInt("silo-port", 11111, min: 1),
            GatewayPort = o.GetInt("gateway-port", 30000, min: 1),
            EmbeddingMemoryBytes = Size(o, "embedding-memory", 512L << 20),
            MaxBodyBytes = Size(o, "max-body", 16L << 20),
            Deadline = TimeSpan.FromMilliseconds(o.GetInt("deadline-ms", 1000, min: 1)),
            ApiKey = o.Get("api-key"),
            ComputeWorkers = o.GetInt("compute-workers", 0, min: 0),
            Scheduler = new SchedulerOptions { ReservedWorkers = o.GetInt("reserved-workers", 1, min: 0) },
            Batching = new BatchingOptions
            {
                MaxBatch = o.GetInt("max-batch", 256, min: 1),
                MaxDelay = TimeSpan.FromMilliseconds(o.GetDouble("max-delay-ms", 1)),
                QueueCapacity = o.GetInt("queue", 1024, min: 1),
            },
        };
    }

    /// <summary>Sizes like 512MB, 8GB, 64KiB or plain bytes.</summary>
    internal static long Size(CliOptions o, string name, long fallback)
    {
        string? text = o.Get(name);
        if (text is null) return fallback;
        string t = text.Trim().ToUpperInvariant().Replace("IB", "B", StringComparison.Ordinal);
        (string digits, long unit) = t switch
        {
            _ when t.EndsWith("GB", StringComparison.Ordinal) => (t[..^2], 1L << 30),
            _ when t.EndsWith("MB", StringComparison.Ordinal) => (t[..^2], 1L << 20),
            _ when t.EndsWith("KB", StringComparison.Ordinal) => (t[..^2], 1L << 10),
            _ when t.EndsWith('B') => (t[..^1], 1L),
            _ => (t, 1L),
        };
        return double.TryParse(digits, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 && v * unit < long.MaxValue
            ? (long)(v * unit)
            : throw new CliException($"--{name}: '{text}' is not a size (e.g. 512MB, 8GB)");
    }

    private static async Task<int> ServeAsync(ServeOptions options)
    {
        using var stop = new CancellationTokenSource();
        RecsysServer server;
        try
        {
            server = await RecsysServer.StartAsync(options, Console.Out, cancel: stop.Token).ConfigureAwait(false);
        }
        catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
        {
            Console.Error.WriteLine($"recsys serve: cannot listen on {options.Listen}:{options.Port} ({e.Message}); pick another --port");
            return 1;
        }
        await using (server.ConfigureAwait(false))
        {
            Console.WriteLine(server.Banner());
            Console.WriteLine("Ctrl+C stops (in-flight requests finish, shards checkpoint).");
            await server.WaitForShutdownAsync().ConfigureAwait(false);
            Console.WriteLine("recsys serve: stopping");
        }
        return 0;
    }
}
