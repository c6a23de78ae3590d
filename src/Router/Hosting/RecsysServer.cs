using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Loading;
using Recsys.EmbeddingGrains.Serving;
using Recsys.Router.Http;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;
using Recsys.Router.Scheduling;
using Recsys.Router.Workloads;

namespace Recsys.Router.Hosting;

/// <summary>
/// One node: an Orleans silo and Kestrel in one WebApplication. The silo hosts embedding shards
/// when the role includes embedding; the HTTP front end (ranking, KServe v2, admin) runs when it
/// includes frontend; health and /metrics answer on every role.
/// </summary>
public sealed class RecsysServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TextWriter _log;

    private RecsysServer(WebApplication app, ServeOptions options, TextWriter log, Uri address)
    {
        _app = app;
        Options = options;
        _log = log;
        Address = address;
    }

    public ServeOptions Options { get; }

    /// <summary>The HTTP base address actually bound (the port is resolved when 0 was asked for).</summary>
    public Uri Address { get; }

    public IServiceProvider Services => _app.Services;

    public ModelRegistry? Registry => _app.Services.GetService<ModelRegistry>();

    /// <summary>The vision and translation models (every kind but DLRM) on a front end.</summary>
    public WorkloadRegistry? Workloads => _app.Services.GetService<WorkloadRegistry>();

    public IPEndPoint SiloEndpoint => new(Options.AdvertiseAddress, Options.SiloPort);

    /// <summary>Builds and starts the node; with loadModels the front end also loads every model's newest version.</summary>
    public static async Task<RecsysServer> StartAsync(ServeOptions options, TextWriter log, bool loadModels = true, CancellationToken cancel = default)
    {
        var repository = new ModelRepository(options.ModelsDirectory);
        if (options.Role.HasFlag(SiloRole.Frontend) && options.WriteDemoModelWhenEmpty && repository.ModelNames().Count == 0)
        {
            string dir = repository.VersionDirectory("demo", "1");
            log.WriteLine($"No model under {repository.Root}: writing the demo model (kaggle-small) to {dir} ...");
            DemoModel.Write(dir, DemoPreset.Find("kaggle-small"));
        }

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(options.Listen, options.Port);
            // Our own check answers 413 with a JSON body without reading the body. Kestrel then
            // drains the unread rest so the client, still sending, receives that answer instead of
            // a reset; only bodies past this backstop get the connection cut.
            k.Limits.MaxRequestBodySize = Math.Max(options.MaxBodyBytes * 4, options.MaxBodyBytes + (16L << 20));
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        builder.UseOrleans(silo =>
        {
            ClusterHosting.Configure(silo, options);
            EmbeddingHosting.AddShards(silo, options, repository);
        });
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<ServingMetrics>();
        if (options.Role.HasFlag(SiloRole.Frontend))
        {
            builder.Services.AddSingleton(sp => new ModelRegistry(repository, sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<ServingMetrics>(), options.Batching, sp.GetRequiredService<ComputeScheduler>(), sp.GetService<LocalResidentShards>()));
            builder.Services.AddSingleton<RankHandler>();
            builder.Services.AddSingleton(repository);
            builder.Services.AddSingleton(_ => new ComputeScheduler(options.ComputeWorkers, options.Scheduler));
            WorkloadKinds.Add(builder.Services);
        }

        WebApplication app = builder.Build();
        RecsysEndpoints.MapHealth(app);
        if (options.Role.HasFlag(SiloRole.Frontend)) RecsysEndpoints.MapFrontend(app);

        await app.StartAsync(cancel).ConfigureAwait(false);
        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var server = new RecsysServer(app, options, log, new Uri(bound.Replace("[::]", "127.0.0.1", StringComparison.Ordinal)));
        if (loadModels && options.Role.HasFlag(SiloRole.Frontend)) await server.LoadModelsAsync(cancel).ConfigureAwait(false);
        return server;
    }

    /// <summary>Loads the newest version of every model in the repository, printing shard load progress.</summary>
    public async Task LoadModelsAsync(CancellationToken cancel = default)
    {
        ModelRegistry registry = Registry ?? throw new InvalidOperationException("this node has no front end role");
        foreach (string name in registry.ModelNames())
        {
            var progress = new LoadProgressPrinter(_log, name);
            using var polling = new CancellationTokenSource();
            Task poll = PollLocalLoadingAsync(name, progress, polling.Token);
            ServedModel model;
            try
            {
                model = await registry.LoadNewestAsync(name, progress, cancel).ConfigureAwait(false);
            }
            finally
            {
                await polling.CancelAsync().ConfigureAwait(false);
                await poll.ConfigureAwait(false);
            }
            progress.Finish(model.Version);
        }
        if (Workloads is not { } workloads) return;
        foreach (string name in workloads.ModelNames())
        {
            IServedWorkload loaded = await workloads.LoadNewestAsync(name, cancel).ConfigureAwait(false);
            _log.WriteLine($"{name}: version {loaded.Version} ({loaded.Kind}) loaded");
        }
    }

    /// <summary>
    /// Shards report completion only once loaded; this silo's loader also counts rows as they go,
    /// so a big table shows progress before its first shard finishes.
    /// </summary>
    private async Task PollLocalLoadingAsync(string model, LoadProgressPrinter printer, CancellationToken stop)
    {
        if (Services.GetService<ShardLoadProgress>() is not { } loading) return;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                long rows = loading.Shards.Where(kv => kv.Key.StartsWith(model + "/", StringComparison.Ordinal)).Sum(kv => kv.Value.Loaded);
                printer.ReportLocal(rows);
            }
        }
        catch (OperationCanceledException)
        {
            // Loading finished.
        }
    }

    /// <summary>The copy-paste lines printed once the node serves.</summary>
    public string Banner()
    {
        var lines = new List<string> { $"Recsys serving on {Address} (role {Options.Role.ToString().ToLowerInvariant()}, silo port {Options.SiloPort}, gateway port {Options.GatewayPort})" };
        if (Registry is { } registry)
        {
            foreach (ServedModel m in registry.Current)
            {
                string sample = Path.Combine(registry.Repository.VersionDirectory(m.Name, m.Version), "sample-request.json");
                lines.Add($"  model {m.Name} version {m.Version}: {m.Spec.Tables.Length} tables, {m.TotalRows:N0} rows");
                if (File.Exists(sample))
                {
                    lines.Add("  try:");
                    lines.Add($"    curl -s -H 'Content-Type: application/json' --data-binary @{sample} {Address}v1/models/{m.Name}/rank");
                }
            }
        }
        if (Workloads is { } workloads)
        {
            foreach (IServedWorkload w in workloads.Current) lines.Add($"  model {w.Name} version {w.Version}: {w.Kind} (KServe v2: {Address}v2/models/{w.Name})");
        }
        lines.Add($"  metrics: curl -s {Address}metrics");
        return string.Join(Environment.NewLine, lines);
    }

    public Task WaitForShutdownAsync(CancellationToken cancel = default) => _app.WaitForShutdownAsync(cancel);

    /// <summary>Kestrel stops taking requests and finishes the ones in flight, then the silo stops (its shards checkpoint as they deactivate).</summary>
    public Task StopAsync(CancellationToken cancel = default) => _app.StopAsync(cancel);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Prints "rows loaded / total" at most once a second: the larger of the rows in shards that
    /// finished (any silo) and the rows this silo's loaders have written so far.
    /// </summary>
    private sealed class LoadProgressPrinter(TextWriter log, string model) : IProgress<(long Loaded, long Total)>
    {
        private readonly Lock _gate = new();
        private long _completed, _local, _total, _printed = -1, _lastTicks;

        public void Report((long Loaded, long Total) value)
        {
            lock (_gate)
            {
                _completed = value.Loaded;
                _total = value.Total;
                Print(force: value.Loaded >= value.Total);
            }
        }

        public void ReportLocal(long rowsLoadedHere)
        {
            lock (_gate)
            {
                _local = rowsLoadedHere;
                Print(force: false);
            }
        }

        private void Print(bool force)
        {
            long rows = Math.Min(_total, Math.Max(_completed, _local));
            long now = Environment.TickCount64;
            if (_total == 0 || rows <= _printed || (!force && now - _lastTicks < 1000)) return;
            _lastTicks = now;
            _printed = rows;
            log.WriteLine($"  loading {model}: {rows:N0} / {_total:N0} rows");
        }

        public void Finish(string version) => log.WriteLine($"  loaded {model} version {version}: {_total:N0} rows in its shards");
    }
}
