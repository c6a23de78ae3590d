using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Recsys.Cli.Commands;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Hosting.Membership;
using Recsys.Tests.Shared;
using Xunit.Abstractions;

namespace Recsys.Cluster.Tests;

/// <summary>
/// A real cluster of separate processes on loopback: redis-server (membership), N embedding silos
/// and one front end, each `dotnet recsys.dll serve` with its own ports and a shared models and
/// data directory. The test process also joins as an Orleans client to ask shards where they live.
/// Dispose kills whatever still runs and prints every process's last lines.
/// </summary>
public sealed class LoopbackCluster : IAsyncDisposable
{
    public const string Model = "dot";

    /// <summary>The dot fixture re-declared with this many shards per table, so both embedding silos get several.</summary>
    public const int ShardsPerTable = 6;

    private readonly ITestOutputHelper _log;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "recsys-cluster-tests-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly List<SiloProcess> _processes = [];
    private IHost? _clientHost;
    private Func<SiloProcess>? _startEmbedding;

    private LoopbackCluster(ITestOutputHelper log, int replicas = 1)
    {
        _log = log;
        Replicas = replicas;
    }

    /// <summary>Replicas per shard written into the model (model.json "replicas"; 1 = none).</summary>
    public int Replicas { get; }

    public string ModelsDirectory => Path.Combine(_root, "models");
    public string DataDirectory => Path.Combine(_root, "data");
    public string ModelDirectory => Path.Combine(ModelsDirectory, Model, "1");
    public string ClusterId { get; } = "cluster-tests-" + Guid.NewGuid().ToString("N")[..6];

    /// <summary>
    /// Where every process's timestamped output is kept after the test (RECSYS_CLUSTER_TEST_LOGS,
    /// else the temp folder): membership, directory and shard activation lines for a timeline.
    /// </summary>
    public string LogDirectory => Path.Combine(
        Environment.GetEnvironmentVariable("RECSYS_CLUSTER_TEST_LOGS") is { Length: > 0 } logs ? logs : Path.Combine(Path.GetTempPath(), "recsys-cluster-test-logs"),
        ClusterId);

    /// <summary>
    /// Log levels for the children: membership changes, connection losses, directory and placement
    /// at Information, and the shards' own activation lines, each stamped with the silo's clock.
    /// </summary>
    private static readonly Dictionary<string, string> ChildLogging = new()
    {
        ["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.fff ",
        ["Logging__Console__FormatterOptions__UseUtcTimestamp"] = "true",
        ["Logging__LogLevel__Orleans.Runtime.MembershipService"] = "Information",
        ["Logging__LogLevel__Orleans.Runtime.Messaging"] = "Information",
        ["Logging__LogLevel__Orleans.Runtime.GrainDirectory"] = "Information",
        ["Logging__LogLevel__Orleans.Runtime.Placement"] = "Information",
        ["Logging__LogLevel__Recsys"] = "Information",
        ["Logging__LogLevel__Recsys.EmbeddingGrains.Hosting.ShardRebalancer"] = "Debug",
    };
    public int RedisPort { get; private set; }
    public List<SiloProcess> Embedding { get; } = [];
    public SiloProcess Frontend { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public IClusterClient Client => _clientHost!.Services.GetRequiredService<IClusterClient>();

    public static Task<LoopbackCluster> StartAsync(ITestOutputHelper log, int embeddingSilos = 2, params string[] extraServeArgs) =>
        StartReplicatedAsync(log, embeddingSilos, 1, extraServeArgs);

    /// <summary>As <see cref="StartAsync"/>, with <paramref name="replicas"/> replicas of every shard.</summary>
    public static async Task<LoopbackCluster> StartReplicatedAsync(ITestOutputHelper log, int embeddingSilos, int replicas, params string[] extraServeArgs)
    {
        var cluster = new LoopbackCluster(log, replicas);
        try
        {
            await cluster.StartProcessesAsync(embeddingSilos, extraServeArgs);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>The same cluster with its membership table in PostgreSQL (<see cref="Postgres.Url"/>) instead of a redis-server.</summary>
    public static async Task<LoopbackCluster> StartWithPostgresAsync(ITestOutputHelper log, string postgresUrl, int embeddingSilos = 2)
    {
        var cluster = new LoopbackCluster(log) { _postgresUrl = postgresUrl };
        try
        {
            await cluster.StartProcessesAsync(embeddingSilos, []);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    private string? _postgresUrl;

    private async Task StartProcessesAsync(int embeddingSilos, string[] extra)
    {
        WriteModel();
        _log.WriteLine($"process logs: {LogDirectory}");
        string membership;
        if (_postgresUrl is null)
        {
            RedisPort = LoopbackPorts.Free();
            SiloProcess redis = Track(SiloProcess.Start("redis", Redis.ServerPath, ["--port", RedisPort.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], logDirectory: LogDirectory));
            await WaitForTcpAsync(redis, RedisPort, TimeSpan.FromSeconds(20));
            membership = $"redis://127.0.0.1:{RedisPort}";
        }
        else
        {
            membership = _postgresUrl;
        }

        (string dotnet, string dll) = RecsysBinary.Locate();
        string[] common = ["--cluster", membership, "--cluster-id", ClusterId, "--models", ModelsDirectory, "--data", DataDirectory, .. ExtraServeArguments()];
        _startEmbedding = () =>
        {
            int http = LoopbackPorts.Free(), silo = LoopbackPorts.Free(), gateway = LoopbackPorts.Free();
            SiloProcess process = Track(SiloProcess.Start($"embedding-{Embedding.Count}", dotnet,
                [dll, "serve", "--role", "embedding", .. common, "--port", $"{http}", "--silo-port", $"{silo}", "--gateway-port", $"{gateway}", .. extra], http, silo, LogDirectory, ChildLogging));
            Embedding.Add(process);
            return process;
        };
        for (int i = 0; i < embeddingSilos; i++) _startEmbedding();
        foreach (SiloProcess e in Embedding) await WaitForHttpAsync(e, "/v2/health/live", TimeSpan.FromSeconds(120));

        int feHttp = LoopbackPorts.Free(), feSilo = LoopbackPorts.Free(), feGateway = LoopbackPorts.Free();
        Frontend = Track(SiloProcess.Start("frontend", dotnet,
            [dll, "serve", "--role", "frontend", .. common, "--port", $"{feHttp}", "--silo-port", $"{feSilo}", "--gateway-port", $"{feGateway}", .. extra], feHttp, feSilo, LogDirectory, ChildLogging));
        await WaitForHttpAsync(Frontend, "/v2/health/ready", TimeSpan.FromSeconds(180));
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{feHttp}/"), Timeout = TimeSpan.FromSeconds(30) };

        _clientHost = new HostBuilder()
            .UseOrleansClient(client =>
            {
                client.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = ClusterId;
                    o.ServiceId = "recsys";
                });
                if (_postgresUrl is null) client.UseRedisClustering($"127.0.0.1:{RedisPort}");
                else client.UsePostgresClustering(ClusterChoice.Parse(_postgresUrl).Postgres!);
            })
            .Build();
        await _clientHost.StartAsync();
    }

    /// <summary>
    /// RECSYS_CLUSTER_TEST_SERVE_ARGS (space-separated) goes to every `recsys serve` besides the
    /// test's own options (repeating one of those is an error): to compare settings, e.g.
    /// "--min-threads 1" brings back the thread-pool stall.
    /// </summary>
    private string[] ExtraServeArguments()
    {
        string[] extra = (Environment.GetEnvironmentVariable("RECSYS_CLUSTER_TEST_SERVE_ARGS") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (extra.Length > 0) _log.WriteLine($"extra serve options from RECSYS_CLUSTER_TEST_SERVE_ARGS: {string.Join(' ', extra)}");
        return extra;
    }

    /// <summary>Starts one more embedding silo with the same options as the first ones and waits until it answers.</summary>
    public async Task<SiloProcess> AddEmbeddingSiloAsync()
    {
        SiloProcess process = _startEmbedding!();
        await WaitForHttpAsync(process, "/v2/health/live", TimeSpan.FromSeconds(120));
        return process;
    }

    private SiloProcess Track(SiloProcess process)
    {
        _processes.Add(process);
        return process;
    }

    /// <summary>The fixture's model with <see cref="ShardsPerTable"/> shards per table.</summary>
    private void WriteModel()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "fixtures", "dlrm", Model);
        Directory.CreateDirectory(ModelDirectory);
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "model.json")))!.AsObject();
        foreach (JsonNode? table in spec["tables"]!.AsArray())
        {
            table!["shards"] = ShardsPerTable;
            if (Replicas > 1) table["replicas"] = Replicas;
        }
        File.WriteAllText(Path.Combine(ModelDirectory, "model.json"), spec.ToJsonString());
        File.Copy(Path.Combine(source, "weights.safetensors"), Path.Combine(ModelDirectory, "weights.safetensors"));
    }

    /// <summary>
    /// Sends every request once until each has succeeded: the first requests of a fresh process pay
    /// for JIT, connections and shard activation and may outlast the deadline; the loads measure
    /// failures, not cold starts.
    /// </summary>
    public async Task WarmUpAsync(ScoredRequest[] requests)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (ScoredRequest request in requests)
        {
            while (true)
            {
                RankOutcome o = await RankLoad.RankOnceAsync(Http, request, 0, clock);
                if (o.Status == HttpStatusCode.OK) break;
                if (clock.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"warm-up: no success within 60 s: {RankLoad.Describe(o)}");
                await Task.Delay(100);
            }
        }
    }

    /// <summary>Where every shard of the model is active now, by shard key, as the silo's "ip:port:generation".</summary>
    public async Task<Dictionary<string, ShardStatus>> ShardStatusAsync()
    {
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(ModelDirectory, "model.json")))!;
        var keys = spec["tables"]!.AsArray()
            .SelectMany(t => Enumerable.Range(0, ShardsPerTable).Select(s => ShardKey.Format(Model, "1", t!["name"]!.GetValue<string>(), s)))
            .ToList();
        ShardStatus[] all = await Task.WhenAll(keys.Select(k => Client.GetGrain<IEmbeddingShardGrain>(k).GetStatus()));
        return keys.Zip(all).ToDictionary(p => p.First, p => p.Second);
    }

    /// <summary>The addresses (generation included) of the embedding processes that are active members now.</summary>
    public async Task<SiloAddress[]> EmbeddingSiloAddressesAsync()
    {
        Dictionary<SiloAddress, SiloStatus> hosts = await Client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
        return hosts.Keys.Where(a => Embedding.Any(e => !e.HasExited && e.SiloPort == a.Endpoint.Port)).ToArray();
    }

    /// <summary>The embedding process whose silo port appears in a status' silo address.</summary>
    public SiloProcess? HostOf(ShardStatus status) =>
        _processes.FirstOrDefault(p => p.SiloPort != 0 && status.Silo.Contains($":{p.SiloPort}:", StringComparison.Ordinal));

    private async Task WaitForHttpAsync(SiloProcess process, string path, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var started = DateTime.UtcNow;
        while (DateTime.UtcNow - started < timeout)
        {
            if (process.HasExited) throw new InvalidOperationException($"{process.Name} exited with code {process.ExitCode} before {path} answered:\n{process.OutputTail()}");
            try
            {
                using HttpResponseMessage r = await http.GetAsync(new Uri($"http://127.0.0.1:{process.HttpPort}{path}"));
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Busy starting.
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"{process.Name} did not answer {path} within {timeout.TotalSeconds:0} s:\n{process.OutputTail()}");
    }

    private static async Task WaitForTcpAsync(SiloProcess process, int port, TimeSpan timeout)
    {
        var started = DateTime.UtcNow;
        while (DateTime.UtcNow - started < timeout)
        {
            if (process.HasExited) throw new InvalidOperationException($"{process.Name} exited with code {process.ExitCode}:\n{process.OutputTail()}");
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }
        throw new TimeoutException($"{process.Name} did not listen on {port} within {timeout.TotalSeconds:0} s");
    }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (_clientHost is not null)
        {
            try
            {
                await _clientHost.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
            }
            catch (Exception e) when (e is OperationCanceledException or OrleansException)
            {
                // The cluster may already be half gone.
            }
            _clientHost.Dispose();
        }
        // Front end first so it does not spend its last seconds retrying dead shards.
        foreach (SiloProcess p in Enumerable.Reverse(_processes))
        {
            _log.WriteLine($"--- {p.Name} (pid {p.Pid}) last lines:\n{p.OutputTail(15)}");
            p.Dispose();
        }
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A file handle may linger for a moment; the temp folder is harmless.
        }
    }
}

/// <summary>redis-server for the membership table; CI sets RECSYS_REQUIRE_REDIS=1 so a missing one fails rather than skips.</summary>
public static class Redis
{
    public const string ServerPath = "/usr/bin/redis-server";

    public static bool Installed => File.Exists(ServerPath);

    public static bool Required => Environment.GetEnvironmentVariable("RECSYS_REQUIRE_REDIS") == "1";
}

/// <summary>A [Fact] that skips, with the reason, when redis-server is missing and CI did not demand it.</summary>
public sealed class RedisFactAttribute : FactAttribute
{
    public RedisFactAttribute()
    {
        if (!Redis.Installed && !Redis.Required)
        {
            Skip = $"{Redis.ServerPath} not found: install redis-server to run the cluster tests (set RECSYS_REQUIRE_REDIS=1 to make this a failure)";
        }
    }
}

/// <summary>A [Theory] that skips like <see cref="RedisFactAttribute"/>.</summary>
public sealed class RedisTheoryAttribute : TheoryAttribute
{
    public RedisTheoryAttribute()
    {
        if (!Redis.Installed && !Redis.Required)
        {
            Skip = $"{Redis.ServerPath} not found: install redis-server to run the cluster tests (set RECSYS_REQUIRE_REDIS=1 to make this a failure)";
        }
    }
}

/// <summary>
/// A PostgreSQL server for the membership tests: `.ci/run` starts one and sets RECSYS_TEST_POSTGRES
/// (postgres://USER@HOST:PORT/DATABASE) and RECSYS_REQUIRE_POSTGRES=1, so a missing one fails rather than skips.
/// </summary>
public static class Postgres
{
    public static string? Url => Environment.GetEnvironmentVariable("RECSYS_TEST_POSTGRES") is { Length: > 0 } url ? url : null;

    public static bool Required => Environment.GetEnvironmentVariable("RECSYS_REQUIRE_POSTGRES") == "1";

    public static string RequireUrl() => Url
        ?? throw new InvalidOperationException("RECSYS_REQUIRE_POSTGRES=1 but RECSYS_TEST_POSTGRES is not set: start PostgreSQL and set it to postgres://USER@HOST:PORT/DATABASE");
}

/// <summary>A [Fact] that skips, with the reason, when no PostgreSQL is configured and CI did not demand one.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (Postgres.Url is null && !Postgres.Required)
        {
            Skip = "RECSYS_TEST_POSTGRES is not set: start PostgreSQL and set it to postgres://USER@HOST:PORT/DATABASE to run the PostgreSQL membership tests (.ci/run does)";
        }
    }
}

/// <summary>The built `recsys` CLI: copied next to the tests (a project reference), else under src/Recsys/bin.</summary>
public static class RecsysBinary
{
    public static (string Dotnet, string Dll) Locate()
    {
        if (!Redis.Installed) throw new InvalidOperationException($"RECSYS_REQUIRE_REDIS=1 but {Redis.ServerPath} does not exist: install redis-server");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        string local = Path.Combine(AppContext.BaseDirectory, "recsys.dll");
        if (File.Exists(local) && File.Exists(Path.Combine(AppContext.BaseDirectory, "recsys.runtimeconfig.json"))) return (dotnet, local);
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (string config in new[] { "Release", "Debug" })
            {
                string candidate = Path.Combine(dir.FullName, "src", "Recsys", "bin", config, "net10.0", "recsys.dll");
                if (File.Exists(candidate)) return (dotnet, candidate);
            }
        }
        throw new FileNotFoundException($"recsys.dll not found next to the tests ({AppContext.BaseDirectory}) nor under src/Recsys/bin: build src/Recsys first");
    }
}
