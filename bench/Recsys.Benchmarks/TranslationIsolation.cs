using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Seq2Seq;
using Recsys.Router.Hosting;
using Recsys.Router.Scheduling;
using Recsys.Router.Translation;

namespace Recsys.Benchmarks;

/// <summary>
/// Issue 8's scheduler objective: ranking p50/p99 at a fixed QPS alone, then with a saturating
/// translation load on the same <see cref="ComputeScheduler"/> (Interactive class, one decoder step
/// per unit, through the served TranslationWorkload); and translation tokens/s alone vs shared.
/// The ranking load is IsolationBench's own (DLRM bottom and top MLPs in a Ranking slot, open loop).
///   dotnet run -c Release --project bench/Recsys.Benchmarks -- translation-isolation [--workers 2]
///     [--reserve 1] [--qps 100] [--rank-batch 64] [--seconds 8] [--rounds 3] [--clients 16]
///     [--models 2] [--beam 4] [--model tests/fixtures/seq2seq/toy/1]
/// </summary>
/// <remarks>
/// --models copies of the fixture model each run their own decode chain (at most one step queued
/// per model), so with 2 the translation load can ask for both workers; --clients closed-loop
/// clients spread over them keep every chain busy.
/// </remarks>
internal static class TranslationIsolation
{
    public static void Run(string[] args)
    {
        var o = Options.Parse(args);
        JsonArray cases = JsonNode.Parse(File.ReadAllText(Path.Combine(o.Model, "reference.json")))!["cases"]!.AsArray();
        int[][] sources = [.. cases.Select(c => c!["source"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray())];
        var ranking = new IsolationRanking(o.RankingArgs);
        Console.WriteLine($"translation-isolation: workers {o.Workers} (reserved for ranking {Math.Min(o.Reserve, o.Workers - 1)}), ranking {o.Qps} QPS x batch {o.RankBatch}, translation {o.Models} model(s) x beam {o.Beam}, {o.Clients} clients, {o.Seconds} s per phase, {o.Rounds} rounds");
        Console.WriteLine($"load average at start: {GemmCompare.LoadAverage()}");
        ranking.Warm();
        WithScheduler(o, s => TranslationPhase(o, s, sources, null));

        var rows = new List<Round>();
        for (int r = 0; r < o.Rounds; r++)
        {
            var round = new Round
            {
                Alone = WithScheduler(o, ranking.Phase),
                TranslationAlone = WithScheduler(o, s => TranslationPhase(o, s, sources, null)),
            };
            (round.Shared, round.TranslationShared) = WithScheduler(o, s =>
            {
                var rank = Task.Run(() => ranking.Phase(s));
                double tokens = TranslationPhase(o, s, sources, rank);
                return (rank.Result, tokens);
            });
            rows.Add(round);
            Console.WriteLine($"{round.Line(r + 1)}; load {GemmCompare.LoadAverage()}");
        }
        Console.WriteLine($"load average at end: {GemmCompare.LoadAverage()}");
        Console.WriteLine(Round.Medians(rows));
    }

    private static T WithScheduler<T>(Options o, Func<ComputeScheduler, T> phase)
    {
        using var scheduler = new ComputeScheduler(o.Workers, new SchedulerOptions { ReservedWorkers = o.Reserve });
        return phase(scheduler);
    }

    /// <summary>Closed loop over the served decode path until <paramref name="until"/> ends (or --seconds); tokens of the best hypotheses per second.</summary>
    private static double TranslationPhase(Options o, ComputeScheduler scheduler, int[][] sources, Task? until)
    {
        var models = Enumerable.Range(0, o.Models).Select(i =>
        {
            Seq2SeqModel model = Seq2SeqModel.Load(ModelSpec.Load(Path.Combine(o.Model, "model.json")));
            return new TranslationWorkload($"toy{i}", "1", model, scheduler, new ServeOptions());
        }).ToArray();
        DecodeOptions options = models[0].Model.Options(o.Beam, nBest: 1, lengthPenalty: 0.6);
        using var stop = new CancellationTokenSource();
        long tokens = 0;
        long start = Stopwatch.GetTimestamp();
        Task[] clients = [.. Enumerable.Range(0, o.Clients).Select(c => Task.Run(async () =>
        {
            TranslationWorkload served = models[c % models.Length];
            for (int r = c; !stop.IsCancellationRequested; r += o.Clients)
            {
                DecodeResult result = await served.TranslateAsync(sources[r % sources.Length], options, long.MaxValue, default).ConfigureAwait(false);
                Hypothesis best = result.Hypotheses[0];
                Interlocked.Add(ref tokens, best.Ids.Length + (best.Finished ? 1 : 0));
            }
        }))];
        if (until is null) Thread.Sleep(TimeSpan.FromSeconds(o.Seconds));
        else until.Wait();
        long counted = Interlocked.Read(ref tokens);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        stop.Cancel();
        Task.WaitAll(clients);
        foreach (TranslationWorkload m in models) m.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return counted / seconds;
    }

    private sealed record RankingLatencies(double P50, double P99, int Count);

    private sealed class Round
    {
        public RankingLatencies Alone { get; init; } = null!;
        public double TranslationAlone { get; init; }
        public RankingLatencies Shared { get; set; } = null!;
        public double TranslationShared { get; set; }

        public string Line(int n) => string.Create(CultureInfo.InvariantCulture,
            $"round {n}: ranking p50/p99 ms: alone {Alone.P50:0.000}/{Alone.P99:0.000}, with translation {Shared.P50:0.000}/{Shared.P99:0.000} " +
            $"(p99 ratio {Shared.P99 / Alone.P99:0.00}, {Shared.Count} requests); translation tokens/s: alone {TranslationAlone:0}, shared {TranslationShared:0} ({TranslationShared / TranslationAlone:P0})");

        public static string Medians(List<Round> rows) => string.Create(CultureInfo.InvariantCulture,
            $"medians over {rows.Count} rounds: ranking p99 alone {IsolationBench.Median(rows.Select(r => r.Alone.P99)):0.000} ms, with translation {IsolationBench.Median(rows.Select(r => r.Shared.P99)):0.000} ms, " +
            $"ratio {IsolationBench.Median(rows.Select(r => r.Shared.P99 / r.Alone.P99)):0.00} (scheduler objective <= 1.5); ranking p50 alone {IsolationBench.Median(rows.Select(r => r.Alone.P50)):0.000} ms, with translation {IsolationBench.Median(rows.Select(r => r.Shared.P50)):0.000} ms; " +
            $"translation tokens/s alone {IsolationBench.Median(rows.Select(r => r.TranslationAlone)):0}, shared {IsolationBench.Median(rows.Select(r => r.TranslationShared)):0} ({IsolationBench.Median(rows.Select(r => r.TranslationShared / r.TranslationAlone)):P0})");
    }

    /// <summary>IsolationBench's ranking load (its RankingRunner and open-loop RankingPhase), shared so the two benchmarks load ranking alike.</summary>
    private sealed class IsolationRanking(string[] args)
    {
        private readonly IsolationBench.Options _options = IsolationBench.Options.Parse(args);
        private IsolationBench.RankingRunner? _runner;

        private IsolationBench.RankingRunner Runner => _runner ??= new IsolationBench.RankingRunner(_options.RankBatch);

        public void Warm()
        {
            for (int i = 0; i < 20; i++) Runner.Once();
        }

        public RankingLatencies Phase(ComputeScheduler scheduler)
        {
            IsolationBench.Latencies l = IsolationBench.RankingPhase(Runner, _options, scheduler);
            return new RankingLatencies(l.P50, l.P99, l.Count);
        }
    }

    private sealed record Options(int Workers, int Reserve, int Qps, int RankBatch, double Seconds, int Rounds, int Clients, int Models, int Beam, string Model)
    {
        /// <summary>The options IsolationBench's ranking phase reads, so both benchmarks load ranking alike.</summary>
        public string[] RankingArgs => ["--workers", W(Workers), "--reserve", W(Reserve), "--qps", W(Qps), "--rank-batch", W(RankBatch), "--seconds", Seconds.ToString(CultureInfo.InvariantCulture)];

        private static string W(int v) => v.ToString(CultureInfo.InvariantCulture);

        public static Options Parse(string[] args)
        {
            var o = new Options(Workers: 2, Reserve: 1, Qps: 100, RankBatch: 64, Seconds: 8, Rounds: 3, Clients: 16, Models: 2, Beam: 4, Model: Path.Combine("tests", "fixtures", "seq2seq", "toy", "1"));
            for (int i = 0; i < args.Length; i += 2)
            {
                if (i + 1 >= args.Length) throw new ArgumentException($"option {args[i]} needs a value");
                string v = args[i + 1];
                o = args[i] switch
                {
                    "--workers" => o with { Workers = Int(args[i], v) },
                    "--reserve" => o with { Reserve = int.Parse(v, NumberStyles.None, CultureInfo.InvariantCulture) },
                    "--qps" => o with { Qps = Int(args[i], v) },
                    "--rank-batch" => o with { RankBatch = Int(args[i], v) },
                    "--seconds" => o with { Seconds = double.Parse(v, CultureInfo.InvariantCulture) },
                    "--rounds" => o with { Rounds = Int(args[i], v) },
                    "--clients" => o with { Clients = Int(args[i], v) },
                    "--models" => o with { Models = Int(args[i], v) },
                    "--beam" => o with { Beam = Int(args[i], v) },
                    "--model" => o with { Model = v },
                    _ => throw new ArgumentException($"unknown option {args[i]} (--workers --reserve --qps --rank-batch --seconds --rounds --clients --models --beam --model)"),
                };
            }
            return o;
        }

        private static int Int(string name, string v) =>
            int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : throw new ArgumentException($"{name} must be a positive integer (got '{v}')");
    }
}
