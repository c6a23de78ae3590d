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
/// Translation throughput and latency of our decode path (continuous DecodeBatch stepped on the
/// ComputeScheduler, ONNX Runtime with 1 intra-op thread) on the fixture model, with the sources of
/// its reference.json cycled. C closed-loop clients (1 = batch 1); tokens = tokens of the best
/// hypothesis including the end token, the same count bench/peers/torch_seq2seq.py reports.
///   dotnet run -c Release --project bench/Recsys.Benchmarks -- seq2seq [--beam 4] [--requests 200]
///     [--clients 1] [--workers 1] [--model tests/fixtures/seq2seq/toy/1]
/// Prints one JSON line.
/// </summary>
public static class Seq2SeqBench
{
    public static void Run(string[] args)
    {
        int beam = Arg(args, "--beam", 4), requests = Arg(args, "--requests", 200), clients = Arg(args, "--clients", 1), workers = Arg(args, "--workers", 1);
        string dir = args.SkipWhile(a => a != "--model").Skip(1).FirstOrDefault() ?? Path.Combine("tests", "fixtures", "seq2seq", "toy", "1");
        JsonArray cases = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "reference.json")))!["cases"]!.AsArray();
        int[][] sources = [.. cases.Select(c => c!["source"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray())];

        using var scheduler = new ComputeScheduler(workers);
        Seq2SeqModel model = Seq2SeqModel.Load(ModelSpec.Load(Path.Combine(dir, "model.json")));
        var served = new TranslationWorkload("toy", "1", model, scheduler, new ServeOptions());
        DecodeOptions options = model.Options(beam, nBest: 1, lengthPenalty: 0.6);

        // Same warm-up as the peer: every source once.
        foreach (int[] s in sources) served.TranslateAsync(s, options, long.MaxValue, default).GetAwaiter().GetResult();

        var latencies = new double[requests];
        long tokens = 0;
        int next = -1;
        var wall = Stopwatch.StartNew();
        Task[] loops = [.. Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            int r;
            while ((r = Interlocked.Increment(ref next)) < requests)
            {
                long t0 = Stopwatch.GetTimestamp();
                DecodeResult result = await served.TranslateAsync(sources[r % sources.Length], options, ComputeScheduler.DeadlineAfter(TimeSpan.FromSeconds(30)), default).ConfigureAwait(false);
                latencies[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                Hypothesis best = result.Hypotheses[0];
                Interlocked.Add(ref tokens, best.Ids.Length + (best.Finished ? 1 : 0));
            }
        }))];
        Task.WaitAll(loops);
        double seconds = wall.Elapsed.TotalSeconds;
        served.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Array.Sort(latencies);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\": \"ours\", \"beam\": {beam}, \"clients\": {clients}, \"requests\": {requests}, \"workers\": {workers}, \"tokens\": {tokens}, \"tokens_per_s\": {tokens / seconds:F1}, \"p50_ms\": {Percentile(latencies, 50):F2}, \"p99_ms\": {Percentile(latencies, 99):F2}}}"));
    }

    private static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Round(p / 100 * (sorted.Length - 1)))];

    private static int Arg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
