using System.Globalization;
using System.Text;
using System.Text.Json;
using Recsys.Cli.Bench;
using Recsys.Cli.Bench.Plot;
using Recsys.Cli.Bench.Reporting;
using Recsys.Cli.Bench.Workload;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.Cli.Commands;

/// <summary>
/// `recsys bench load|capacity|bandwidth|offline`: the load generator. Options are parsed before
/// the first await so mistakes reach CommandLine as a CliException; everything the runs need
/// lives in src/Recsys/Bench.
/// </summary>
public static class BenchCommand
{
    public const string Usage = """
        usage: recsys bench <mode> [options]
          load        open-loop Poisson traffic at --qps for --duration; latency percentiles, errors, server stages
          capacity    highest QPS whose p99 stays within --sla-ms (ramp x2, then bisect)
          bandwidth   lookup-heavy traffic (--lookups per bag); embedding rows/s, GB/s pooled, lookup bytes on the wire
          offline     the engine in this process, no network: the same batch scored back to back on --threads cores
          memory      fills the embedding silos one demo model at a time; rows per GB, cache hit rate, p99 as rows move to disk

        network modes (load, capacity, bandwidth):
          --url URL             server base URL (http://127.0.0.1:8080); loopback only unless --allow-remote
          --model NAME          served model (required)
          --models DIR          model repository to read table rows and lookups from (else ./models, else the server's metadata)
          --rows N              rows per table, overriding what the repository or server says (ids are drawn below it)
          --lookups N           ids per bag for every table (default: the model's "lookups"; bandwidth: 64)
          --qps N               target rate (load 100, bandwidth 20; bandwidth also takes a list 10,20,40)
          --arrivals A          poisson | fixed (poisson)
          --duration T          measured time per run, e.g. 30s, 500ms, 2m (load 30s)
          --warmup T            unmeasured traffic before it (load 5s, capacity steps 2s)
          --max-requests N      stop after N measured requests
          --max-in-flight N     client cap on outstanding requests; arrivals beyond it are reported as dropped (1024)
          --timeout T           per-request timeout, counted as error "timeout" (10s)
          --batch-dist D        samples per request: fixed:64 | normal:64,16 | lognormal:MEAN,SD | file:PATH (fixed:64)
          --ids I               uniform | zipf:S, e.g. zipf:0.99 (uniform)
          --format F            json | msgpack (json)
          --distinct-bodies N   bodies generated before the run and replayed in turn (512)
          --seed N              seed of arrivals, sizes and ids (1)
          --save-bodies DIR     write the generated bodies as DIR/body-N.json|.msgpack and exit (for wrk, bench/wrk/rank.lua)
          --sla-ms X            capacity: p99 bound (30)
          --start-qps N         capacity: first rate (50)
          --max-qps N           capacity: never offer more (100000)
          --step-duration T     capacity: measured time per step (10s)
          --max-steps N         capacity: step budget (12)
          --max-error-rate X    capacity: errors+drops allowed per step, as a fraction (0.01)
          --min-step-requests N capacity: a step lasts long enough for N requests, up to 6x --step-duration (300)
        offline:
          --models DIR --model NAME [--version V] [--input FILE | --batch N] [--threads N] [--duration T] [--max-requests N]
        memory (the server's --models directory must be readable and writable here; the server needs --api-key):
          --url URL --models DIR --api-key KEY [--preset rmc1] [--scale 0.01] [--steps 6] [--prefix memcap]
          [--qps 50] [--duration 10s] [--warmup 3s] [--ids zipf:0.99] [--batch-dist fixed:64] [--timeout 10s]
          [--plot FILE]         p50/p95/p99 against rows held
        every mode:
          --json                one JSON document on stdout instead of the table
          --plot FILE           latency chart (.png or .svg): latency vs QPS (capacity, bandwidth), latency by percentile (load, offline)
          --quiet               no progress line on stderr
        """;

    private static readonly string[] NetworkValues =
        ["url", "model", "models", "rows", "lookups", "qps", "arrivals", "duration", "warmup", "max-requests", "max-in-flight", "timeout",
         "batch-dist", "ids", "format", "distinct-bodies", "seed", "plot", "save-bodies", "sla-ms", "start-qps", "max-qps", "step-duration", "max-steps", "max-error-rate", "min-step-requests"];

    private static readonly string[] OfflineValues = ["models", "model", "version", "input", "batch", "threads", "duration", "max-requests", "seed", "plot"];
    private static readonly string[] MemoryValues =
        ["url", "models", "api-key", "preset", "scale", "steps", "prefix", "qps", "duration", "warmup", "ids", "batch-dist", "distinct-bodies", "seed", "timeout", "max-in-flight", "plot"];

    private static readonly string[] Switches = ["json", "allow-remote", "quiet"];

    public static Task<int> RunAsync(string[] args)
    {
        // Idle thread-pool workers spin before they sleep; a load generator wakes them for every
        // request, and the spinning doubled the client's CPU per request on 2 cores shared with the
        // server (measured against wrk, docs/BENCHMARKS.md). Read once, when the pool starts:
        // this runs before anything in the process has queued work.
        AppContext.SetData("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", 0);
        using var stop = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            return Task.FromResult(RunAsync(args, Console.Out, Console.Error, stop.Token).GetAwaiter().GetResult());
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>Entry point for tests: writes the report to <paramref name="stdout"/> and the progress line to <paramref name="stderr"/>.</summary>
    public static Task<int> RunAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        if (args.Count == 0 || args[0] is "-h" or "--help")
        {
            stdout.WriteLine(Usage);
            return Task.FromResult(args.Count == 0 ? 2 : 0);
        }
        string mode = args[0];
        IReadOnlyList<string> rest = [.. args.Skip(1)];
        try
        {
            return mode switch
            {
                "load" or "capacity" or "bandwidth" => RunNetworkAsync(mode, ParseNetwork(mode, CliOptions.Parse(rest, NetworkValues, Switches)), stdout, stderr, cancel),
                "offline" => Task.FromResult(RunOffline(CliOptions.Parse(rest, OfflineValues, Switches), stdout, stderr, cancel)),
                "memory" => BenchMemoryMode.RunAsync(CliOptions.Parse(rest, MemoryValues, Switches), stdout, stderr, cancel),
                _ => throw new CliException($"unknown mode '{mode}' (load, capacity, bandwidth, offline, memory)"),
            };
        }
        catch (FormatException e)
        {
            throw new CliException(e.Message);
        }
    }

    private sealed record NetworkSettings(
        Uri Url, string Model, string? Models, long? Rows, int? Lookups, double[] Qps, LoadPlan Plan, TimeSpan Timeout, SizeDistribution Sizes,
        string Ids, WireFormat Format, int DistinctBodies, string? Plot, string? SaveBodies, bool Json, bool Quiet,
        CapacityCriteria Criteria, double StartQps, double MaxQps, int MaxSteps, int MinStepRequests);

    private static NetworkSettings ParseNetwork(string mode, CliOptions o)
    {
        bool capacity = mode == "capacity", bandwidth = mode == "bandwidth";
        Uri url = BenchTarget.ParseUrl(o.Get("url", "http://127.0.0.1:8080"), o.Has("allow-remote"));
        string model = o.Require("model");
        double[] qps = ParseRates(o.Get("qps", bandwidth ? "20" : "100"), allowList: bandwidth);
        string arrivals = o.GetChoice("arrivals", "poisson", ["poisson", "fixed"]);
        TimeSpan duration = Duration(o, "duration", capacity ? "10s" : "30s");
        if (capacity) duration = Duration(o, "step-duration", "10s");
        var plan = new LoadPlan
        {
            Qps = qps[0],
            Arrivals = arrivals,
            Duration = duration,
            Warmup = Duration(o, "warmup", capacity ? "2s" : "5s", allowZero: true),
            MaxRequests = o.GetLong("max-requests", long.MaxValue, min: 1),
            MaxInFlight = o.GetInt("max-in-flight", 1024, min: 1),
            Seed = (ulong)o.GetLong("seed", 1, min: 0),
        };
        int maxBatch = 4096;
        SizeDistribution sizes = SizeDistribution.Parse(o.Get("batch-dist", "fixed:64"), maxBatch);
        string ids = o.Get("ids", "uniform");
        _ = IdSampler.Parse(ids, 1000, 0);
        string? plot = o.Get("plot");
        if (plot is not null && !plot.EndsWith(".png", StringComparison.OrdinalIgnoreCase) && !plot.EndsWith(".svg", StringComparison.OrdinalIgnoreCase))
        {
            throw new CliException($"--plot: '{plot}' must end in .png or .svg");
        }
        long? rows = o.Has("rows") ? o.GetLong("rows", 1, min: 1) : null;
        int? lookups = o.Has("lookups") ? o.GetInt("lookups", 1, min: 1) : bandwidth ? 64 : null;
        double sla = o.GetDouble("sla-ms", 30);
        if (!(sla > 0)) throw new CliException("--sla-ms must be > 0");
        double maxError = o.GetDouble("max-error-rate", 0.01);
        if (maxError is < 0 or > 1) throw new CliException("--max-error-rate must be a fraction in [0, 1]");
        double startQps = o.GetDouble("start-qps", 50), maxQps = o.GetDouble("max-qps", 100_000);
        if (!(startQps > 0) || !(maxQps >= startQps)) throw new CliException("--start-qps must be > 0 and <= --max-qps");
        return new NetworkSettings(
            url, model, o.Get("models"), rows, lookups, qps, plan, Duration(o, "timeout", "10s"), sizes, ids,
            o.GetChoice("format", "json", ["json", "msgpack"]) == "json" ? WireFormat.Json : WireFormat.MessagePack,
            o.GetInt("distinct-bodies", 512, min: 1), plot, o.Get("save-bodies"), o.Has("json"), o.Has("quiet"),
            new CapacityCriteria(sla, maxError), startQps, maxQps, o.GetInt("max-steps", 12, min: 1), o.GetInt("min-step-requests", 300, min: 1));
    }

    private static async Task<int> RunNetworkAsync(string mode, NetworkSettings s, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        using BenchTarget target = BenchTarget.Create(s.Url, s.Model, s.Plan.MaxInFlight, s.Timeout);
        WorkloadShape shape;
        try
        {
            shape = await ResolveShapeAsync(s, target, cancel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FormatException or ModelFileException or HttpRequestException or TaskCanceledException)
        {
            stderr.WriteLine($"recsys bench {mode}: {e.Message}");
            return 2;
        }
        var pool = new RequestPool(shape, s.Sizes, s.Ids, s.Format, s.DistinctBodies, s.Plan.Seed);
        if (s.SaveBodies is not null)
        {
            Directory.CreateDirectory(s.SaveBodies);
            string extension = s.Format == WireFormat.Json ? "json" : "msgpack";
            for (int i = 0; i < pool.Requests.Count; i++) File.WriteAllBytes(Path.Combine(s.SaveBodies, $"body-{i}.{extension}"), pool.Requests[i].Body);
            stdout.WriteLine($"wrote {pool.Requests.Count} bodies to {Path.GetFullPath(s.SaveBodies)}");
            return 0;
        }
        var driver = new OpenLoopDriver(target.Http, target.RankEndpoint, target.MetricsEndpoint, s.Model, pool);
        ProgressLine? progress = s.Quiet ? null : new ProgressLine(stderr);

        if (mode == "capacity")
        {
            CapacityResult result = await CapacitySearch.RunAsync(
                (qps, step) => driver.RunAsync(StepPlan(s, qps, step), progress, $"step {step + 1} @ {qps:0.#} qps", cancel),
                s.StartQps, s.MaxQps, s.MaxSteps, tolerance: 0.05, s.Criteria, cancel).ConfigureAwait(false);
            progress?.Finish();
            string? plotPath = s.Plot is null ? null
                : LatencyPlot.SaveCurve(s.Plot, $"{s.Model}: p99 SLA {s.Criteria.SlaMs} ms, capacity {result.MaxQps:0.#} qps", [.. result.Steps.Select(Point)], s.Criteria.SlaMs);
            if (s.Json) WriteJson(stdout, j => WriteCapacityJson(j, s, shape, result, plotPath));
            else WriteCapacityTable(stdout, s, shape, result, plotPath);
            return 0;
        }

        var runs = new List<LoadResult>();
        foreach (double qps in s.Qps)
        {
            runs.Add(await driver.RunAsync(s.Plan with { Qps = qps }, progress, $"{mode} @ {qps:0.#} qps", cancel).ConfigureAwait(false));
            if (cancel.IsCancellationRequested) break;
        }
        progress?.Finish();
        LoadResult last = runs[^1];
        string? plot = null;
        if (s.Plot is not null)
        {
            plot = mode == "bandwidth" && runs.Count > 1
                ? LatencyPlot.SaveCurve(s.Plot, $"{s.Model}: {shape.LookupsPerSample} lookups per sample", [.. runs.Select(r => new CurvePoint(r.TargetQps, r.Latency.P50, r.Latency.P95, r.Latency.P99))], null)
                : LatencyPlot.SavePercentiles(s.Plot, $"{s.Model} at {last.Qps:0.#} qps ({s.Sizes.Spec}, {s.Ids})", last.Latency.Spectrum());
        }
        if (s.Json) WriteJson(stdout, j => WriteLoadJson(j, mode, s, shape, runs, plot));
        else WriteLoadTable(stdout, mode, s, shape, runs, plot);
        return 0;
    }

    /// <summary>
    /// A p99 from a few dozen requests is one unlucky request: at low rates a step runs long
    /// enough for --min-step-requests, but never more than 6x the step duration (bounded runs).
    /// </summary>
    private static LoadPlan StepPlan(NetworkSettings s, double qps, int step)
    {
        double seconds = Math.Min(Math.Max(s.Plan.Duration.TotalSeconds, s.MinStepRequests / qps), 6 * s.Plan.Duration.TotalSeconds);
        return s.Plan with { Qps = qps, Duration = TimeSpan.FromSeconds(seconds), Seed = s.Plan.Seed + (ulong)step };
    }

    private static async Task<WorkloadShape> ResolveShapeAsync(NetworkSettings s, BenchTarget target, CancellationToken cancel)
    {
        if (s.Models is not null) return WorkloadShape.FromRepository(s.Models, s.Model, s.Lookups);
        // The server's default repository, when this runs beside it (loopback is the default target).
        if (s.Rows is null && Directory.Exists(Path.Combine("models", s.Model))) return WorkloadShape.FromRepository("models", s.Model, s.Lookups);
        // Else the server's KServe metadata, which carries every table's rows and pooling factor.
        return await target.ShapeFromServerAsync(s.Rows, s.Lookups, cancel).ConfigureAwait(false);
    }

    // x is the offered rate: a step the server could not keep up with would fold the curve back if plotted at its achieved rate.
    private static CurvePoint Point(CapacityStep step) => new(step.TargetQps, step.Result.Latency.P50, step.Result.Latency.P95, step.Result.Latency.P99);


    private static void WriteJson(TextWriter stdout, Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            body(json);
            json.WriteEndObject();
        }
        stdout.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void WriteWorkload(Utf8JsonWriter j, string mode, NetworkSettings s, WorkloadShape shape, string? plot)
    {
        j.WriteString("mode", mode);
        j.WriteString("url", s.Url.ToString());
        j.WriteString("model", s.Model);
        j.WriteString("format", s.Format == WireFormat.Json ? "json" : "msgpack");
        j.WriteString("arrivals", s.Plan.Arrivals);
        j.WriteString("batch_dist", s.Sizes.Spec);
        j.WriteString("ids", s.Ids);
        j.WriteNumber("lookups_per_sample", shape.LookupsPerSample);
        if (plot is null) j.WriteNull("plot");
        else j.WriteString("plot", plot);
    }

    private static void WriteLoadJson(Utf8JsonWriter j, string mode, NetworkSettings s, WorkloadShape shape, List<LoadResult> runs, string? plot)
    {
        WriteWorkload(j, mode, s, shape, plot);
        LoadResult last = runs[^1];
        ReportWriter.WriteLoadFields(j, last);
        if (mode != "bandwidth") return;
        WriteBandwidthFields(j, shape, last);
        j.WriteStartArray("steps");
        foreach (LoadResult r in runs)
        {
            j.WriteStartObject();
            ReportWriter.WriteLoadFields(j, r);
            WriteBandwidthFields(j, shape, r);
            j.WriteEndObject();
        }
        j.WriteEndArray();
    }

    private static double MeanRowBytes(WorkloadShape shape) => shape.LookupsPerSample == 0 ? 0 : (double)shape.PooledBytesPerSample / shape.LookupsPerSample;

    private static void WriteBandwidthFields(Utf8JsonWriter j, WorkloadShape shape, LoadResult r)
    {
        j.WriteNumber("rows_per_s", Math.Round(r.LookupsPerSecond, 1));
        j.WriteNumber("pooled_gb_per_s", Math.Round(r.LookupsPerSecond * MeanRowBytes(shape) / 1e9, 6));
        double wire = r.Server is { } srv && r.AnsweredSeconds > 0 ? (srv.LookupBytesSent + srv.LookupBytesReceived) / r.AnsweredSeconds : 0;
        j.WriteNumber("lookup_wire_gb_per_s", Math.Round(wire / 1e9, 6));
        j.WriteStartArray("lookup_bytes_by_silo");
        foreach ((string silo, long sent, long received) in r.Server?.BytesBySilo ?? [])
        {
            j.WriteStartObject();
            j.WriteString("silo", silo);
            j.WriteNumber("sent", sent);
            j.WriteNumber("received", received);
            j.WriteNumber("mb_per_s", r.AnsweredSeconds > 0 ? Math.Round((sent + received) / r.AnsweredSeconds / 1e6, 3) : 0);
            j.WriteEndObject();
        }
        j.WriteEndArray();
    }

    private static void WriteLoadTable(TextWriter o, string mode, NetworkSettings s, WorkloadShape shape, List<LoadResult> runs, string? plot)
    {
        ReportWriter.Row(o, "recsys bench", $"{mode} {s.Model} at {s.Url}");
        ReportWriter.Row(o, "workload", $"{s.Plan.Arrivals} arrivals, sizes {s.Sizes.Spec}, ids {s.Ids}, {shape.LookupsPerSample} lookups/sample, {(s.Format == WireFormat.Json ? "json" : "msgpack")}");
        if (mode == "bandwidth")
        {
            o.WriteLine();
            o.WriteLine($"{"target qps",10} {"qps",9} {"rows/s",12} {"pooled GB/s",11} {"wire MB/s",10} {"p50 ms",8} {"p99 ms",8} {"errors",7}");
            foreach (LoadResult r in runs)
            {
                double wire = r.Server is { } srv && r.AnsweredSeconds > 0 ? (srv.LookupBytesSent + srv.LookupBytesReceived) / r.AnsweredSeconds : 0;
                o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.TargetQps,10:0.#} {r.Qps,9:0.#} {r.LookupsPerSecond,12:0} {r.LookupsPerSecond * MeanRowBytes(shape) / 1e9,11:0.0000} {wire / 1e6,10:0.00} {r.Latency.P50,8:0.00} {r.Latency.P99,8:0.00} {r.ErrorCount + r.DroppedByClient,7}"));
                foreach ((string silo, long sent, long received) in r.Server?.BytesBySilo ?? [])
                {
                    double perSilo = r.AnsweredSeconds > 0 ? (sent + received) / r.AnsweredSeconds / 1e6 : 0;
                    o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"",10}   silo {silo}: {perSilo:0.00} MB/s ({sent:N0} B sent, {received:N0} B received)"));
                }
            }
            o.WriteLine();
        }
        ReportWriter.WriteLoadTable(o, runs[^1]);
        if (plot is not null) ReportWriter.Row(o, "plot", plot);
    }

    private static void WriteCapacityJson(Utf8JsonWriter j, NetworkSettings s, WorkloadShape shape, CapacityResult result, string? plot)
    {
        WriteWorkload(j, "capacity", s, shape, plot);
        j.WriteNumber("sla_ms", s.Criteria.SlaMs);
        j.WriteNumber("max_qps", result.MaxQps);
        // The top-level fields describe the best sustained step (or the gentlest one tried when none passed).
        LoadResult shown = result.Best?.Result ?? result.Steps.OrderBy(st => st.TargetQps).First().Result;
        ReportWriter.WriteLoadFields(j, shown);
        j.WriteStartArray("steps");
        foreach (CapacityStep step in result.Steps)
        {
            j.WriteStartObject();
            j.WriteBoolean("pass", step.Pass);
            j.WriteString("verdict", step.Verdict);
            ReportWriter.WriteLoadFields(j, step.Result);
            j.WriteEndObject();
        }
        j.WriteEndArray();
    }

    private static void WriteCapacityTable(TextWriter o, NetworkSettings s, WorkloadShape shape, CapacityResult result, string? plot)
    {
        ReportWriter.Row(o, "recsys bench", $"capacity {s.Model} at {s.Url}, p99 SLA {s.Criteria.SlaMs} ms");
        ReportWriter.Row(o, "workload", $"{s.Plan.Arrivals} arrivals, sizes {s.Sizes.Spec}, ids {s.Ids}, {shape.LookupsPerSample} lookups/sample");
        o.WriteLine();
        o.WriteLine($"{"step",4} {"target",9} {"qps",9} {"samples/s",11} {"p50 ms",8} {"p95 ms",8} {"p99 ms",8} {"errors",7} {"dropped",8}  verdict");
        for (int i = 0; i < result.Steps.Count; i++)
        {
            CapacityStep st = result.Steps[i];
            LoadResult r = st.Result;
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{i + 1,4} {st.TargetQps,9:0.#} {r.Qps,9:0.#} {r.SamplesPerSecond,11:0} {r.Latency.P50,8:0.00} {r.Latency.P95,8:0.00} {r.Latency.P99,8:0.00} {r.ErrorCount,7} {r.DroppedByClient,8}  {(st.Pass ? "pass" : "FAIL")} {st.Verdict}"));
        }
        o.WriteLine();
        ReportWriter.Row(o, "capacity", result.Best is null ? $"no step met the SLA (lowest tried {result.Steps.Min(st => st.TargetQps):0.#} qps)" : $"{result.MaxQps:0.#} qps within p99 {s.Criteria.SlaMs} ms");
        if (result.Best is not null)
        {
            o.WriteLine();
            ReportWriter.WriteLoadTable(o, result.Best.Result);
        }
        if (plot is not null) ReportWriter.Row(o, "plot", plot);
    }

    private static int RunOffline(CliOptions o, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var repository = new ModelRepository(o.Require("models"));
        string name = o.Require("model");
        if (!ModelRepository.IsSafeName(name)) throw new CliException($"--model: '{name}' is not a plain directory name");
        string version = o.Get("version") ?? repository.NewestVersion(name) ?? throw new CliException($"--model: no model '{name}' with a model.json under {repository.Root}");
        int threads = o.GetInt("threads", Environment.ProcessorCount, min: 1);
        TimeSpan duration = Duration(o, "duration", "30s");
        long maxBatches = o.GetLong("max-requests", long.MaxValue, min: 1);
        string? input = o.Get("input");
        if (input is not null && o.Has("batch")) throw new CliException("--input and --batch exclude each other (the batch is the input's)");
        int batchSize = o.GetInt("batch", 256, min: 1);
        string? plotFile = o.Get("plot");
        bool json = o.Has("json"), quiet = o.Has("quiet");

        DlrmModel model;
        try
        {
            model = DlrmModel.Load(repository.VersionDirectory(name, version));
        }
        catch (ModelFileException e)
        {
            throw new CliException(e.Message);
        }
        using (model)
        {
            byte[] body;
            if (input is null)
            {
                var shape = WorkloadShape.FromSpec(name, model.Spec);
                body = new RequestPool(shape, new FixedSize(batchSize, int.MaxValue) { Spec = $"fixed:{batchSize}" }, "uniform", WireFormat.Json, 1, (ulong)o.GetLong("seed", 1, min: 0)).Requests[0].Body;
            }
            else
            {
                try
                {
                    body = File.ReadAllBytes(input);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new CliException($"--input: cannot read {input}: {e.Message}");
                }
            }
            RankBatch batch;
            try
            {
                batch = new RankRequestJson(model.Spec, maxBatch: 1 << 20).Parse(body);
            }
            catch (InvalidRequestException e)
            {
                throw new CliException($"{input ?? "generated body"}: {e.Message}");
            }
            var progress = quiet ? null : new ProgressLine(stderr);
            OfflineResult r = OfflineRunner.Run(model, batch, threads, duration, maxBatches,
                (n, t) => progress?.Update(string.Create(CultureInfo.InvariantCulture, $"offline {t,6:0.0}s  batches {n,9}  {n * batch.Batch / Math.Max(t, 1e-9),12:0} samples/s")),
                cancel);
            progress?.Finish();
            string? plot = plotFile is null ? null : LatencyPlot.SavePercentiles(plotFile, $"{name} offline, batch {r.Batch}, {r.Threads} threads", r.Latency.Spectrum());
            if (json) WriteJson(stdout, j => WriteOfflineJson(j, name, version, r, plot));
            else WriteOfflineTable(stdout, name, version, r, plot);
        }
        return 0;
    }

    private static void WriteOfflineJson(Utf8JsonWriter j, string model, string version, OfflineResult r, string? plot)
    {
        j.WriteString("mode", "offline");
        j.WriteString("model", model);
        j.WriteString("version", version);
        j.WriteNumber("threads", r.Threads);
        j.WriteNumber("batch", r.Batch);
        j.WriteNumber("duration_s", Math.Round(r.Seconds, 4));
        j.WriteNumber("qps", Math.Round(r.BatchesPerSecond, 3));
        j.WriteNumber("samples_per_s", Math.Round(r.SamplesPerSecond, 1));
        j.WriteNumber("requests", r.Batches);
        j.WriteNumber("error_count", 0);
        j.WriteStartObject("errors");
        j.WriteEndObject();
        ReportWriter.WriteLatency(j, r.Latency);
        j.WriteNumber("rows_per_s", Math.Round(r.RowsPerSecond, 1));
        j.WriteNumber("pooled_gb_per_s", Math.Round(r.PooledBytesPerSecond / 1e9, 6));
        j.WriteStartObject("stages");
        double total = r.BottomSeconds + r.PoolSeconds + r.TopSeconds;
        foreach ((string stage, double seconds) in new[] { ("bottom_mlp", r.BottomSeconds), ("pooling", r.PoolSeconds), ("interaction_top_mlp", r.TopSeconds) })
        {
            j.WriteStartObject(stage);
            j.WriteNumber("mean_ms", r.Batches == 0 ? 0 : Math.Round(seconds / r.Batches * 1000, 4));
            j.WriteNumber("fraction", total == 0 ? 0 : Math.Round(seconds / total, 4));
            j.WriteEndObject();
        }
        j.WriteEndObject();
        if (plot is null) j.WriteNull("plot");
        else j.WriteString("plot", plot);
    }

    private static void WriteOfflineTable(TextWriter o, string model, string version, OfflineResult r, string? plot)
    {
        ReportWriter.Row(o, "recsys bench", $"offline {model} v{version}, batch {r.Batch}, {r.Threads} threads, {ReportWriter.F(r.Seconds)} s");
        ReportWriter.Row(o, "samples/s", ReportWriter.F(r.SamplesPerSecond, "0"));
        ReportWriter.Row(o, "batches/s", ReportWriter.F(r.BatchesPerSecond, "0.0"));
        ReportWriter.Row(o, "rows/s", $"{ReportWriter.F(r.RowsPerSecond, "0")}  ({ReportWriter.F(r.PooledBytesPerSecond / 1e9, "0.000")} GB/s pooled)");
        LatencySummary l = r.Latency;
        Row(o, "batch latency ms", $"p50 {l.P50:0.000}  p95 {l.P95:0.000}  p99 {l.P99:0.000}  p99.9 {l.P999:0.000}  max {l.Max:0.000}");
        double total = r.BottomSeconds + r.PoolSeconds + r.TopSeconds;
        foreach ((string stage, double seconds) in new[] { ("bottom MLP", r.BottomSeconds), ("pooling", r.PoolSeconds), ("interact+top MLP", r.TopSeconds) })
        {
            Row(o, stage, $"mean {(r.Batches == 0 ? 0 : seconds / r.Batches * 1000):0.000} ms/batch  ({(total == 0 ? 0 : seconds / total):P1})");
        }
        if (plot is not null) ReportWriter.Row(o, "plot", plot);
    }

    private static void Row(TextWriter o, string name, FormattableString value) => ReportWriter.Row(o, name, value.ToString(CultureInfo.InvariantCulture));

    private static double[] ParseRates(string text, bool allowList)
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || (parts.Length > 1 && !allowList)) throw new CliException($"--qps: '{text}' must be one rate{(allowList ? " or a list like 10,20,40" : "")}");
        return [.. parts.Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 && double.IsFinite(v)
            ? v
            : throw new CliException($"--qps: '{p}' is not a positive rate"))];
    }

    /// <summary>Durations like 30s, 500ms, 2m, or plain seconds.</summary>
    internal static TimeSpan Duration(CliOptions o, string name, string fallback, bool allowZero = false)
    {
        string text = o.Get(name, fallback).Trim();
        (string digits, double unit) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 0.001),
            _ when text.EndsWith('s') => (text[..^1], 1.0),
            _ when text.EndsWith('m') => (text[..^1], 60.0),
            _ when text.EndsWith('h') => (text[..^1], 3600.0),
            _ => (text, 1.0),
        };
        if (!double.TryParse(digits, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v) || v < 0 || (v == 0 && !allowZero) || v * unit > 86_400)
        {
            throw new CliException($"--{name}: '{text}' is not a duration (e.g. 30s, 500ms, 2m; at most a day)");
        }
        return TimeSpan.FromSeconds(v * unit);
    }
}
