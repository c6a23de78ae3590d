using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.Cluster.Tests;

/// <summary>A ranking request and the scores the single-node model (DlrmModel in this process) gives it.</summary>
public sealed record ScoredRequest(string Json, float[] Expected);

/// <summary>What one request of a load got back.</summary>
public sealed record RankOutcome(int Index, TimeSpan Sent, TimeSpan Done, HttpStatusCode Status, bool WrongScores, string? Error);

/// <summary>Random requests for the fixture model, scored in-process, and a paced load over HTTP that checks every answer.</summary>
public static class RankLoad
{
    /// <summary>Distributed partial sums add in another order than one process: a few ulps, never more.</summary>
    public const float Tolerance = 2e-5f;

    public static ScoredRequest[] Requests(string modelDirectory, int count, int seed)
    {
        using DlrmModel model = DlrmModel.Load(modelDirectory);
        DlrmSpec spec = model.Spec;
        var random = new Random(seed);
        var parser = new RankRequestJson(spec);
        var requests = new ScoredRequest[count];
        for (int r = 0; r < count; r++)
        {
            int batch = 1 + random.Next(8);
            var dense = new JsonArray();
            for (int b = 0; b < batch; b++)
            {
                dense.Add(new JsonArray(Enumerable.Range(0, spec.DenseFeatures).Select(_ => (JsonNode)JsonValue.Create(MathF.Round((float)(random.NextDouble() * 4 - 1), 3))!).ToArray()));
            }
            var sparse = new JsonObject();
            foreach (var table in spec.Tables)
            {
                var bags = new JsonArray();
                for (int b = 0; b < batch; b++)
                {
                    int size = random.Next(5);
                    bags.Add(new JsonArray(Enumerable.Range(0, size).Select(_ => (JsonNode)JsonValue.Create(random.NextInt64(table.Rows))!).ToArray()));
                }
                sparse[table.Name] = bags;
            }
            string json = new JsonObject { ["dense"] = dense, ["sparse"] = sparse }.ToJsonString();
            requests[r] = new ScoredRequest(json, model.Score(parser.Parse(Encoding.UTF8.GetBytes(json))));
        }
        return requests;
    }

    /// <summary>
    /// Sends total requests from a few workers, each pausing between its requests, and checks every
    /// 200 against the single-node scores. afterCompleted(n) runs once when n requests have finished.
    /// </summary>
    public static async Task<List<RankOutcome>> RunAsync(HttpClient http, ScoredRequest[] requests, int total, int workers, TimeSpan pause, int triggerAt, Func<Task> trigger, Stopwatch clock)
    {
        var outcomes = new List<RankOutcome>(total);
        int next = -1, completed = 0;
        Task? triggered = null;
        object gate = new();
        async Task Worker()
        {
            while (true)
            {
                int i = Interlocked.Increment(ref next);
                if (i >= total) return;
                RankOutcome outcome = await RankOnceAsync(http, requests[i % requests.Length], i, clock);
                lock (gate)
                {
                    outcomes.Add(outcome);
                    if (++completed == triggerAt) triggered = Task.Run(trigger);
                }
                await Task.Delay(pause);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(Worker)));
        if (triggered is not null) await triggered;
        return [.. outcomes.OrderBy(o => o.Index)];
    }

    public static async Task<RankOutcome> RankOnceAsync(HttpClient http, ScoredRequest request, int index, Stopwatch clock)
    {
        TimeSpan sent = clock.Elapsed;
        using var content = new StringContent(request.Json, Encoding.UTF8, "application/json");
        try
        {
            using HttpResponseMessage response = await http.PostAsync(new Uri($"v1/models/{LoopbackCluster.Model}/rank", UriKind.Relative), content);
            string body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode != HttpStatusCode.OK) return new RankOutcome(index, sent, clock.Elapsed, response.StatusCode, false, body);
            float[] scores = JsonNode.Parse(body)!["scores"]!.AsArray().Select(s => s!.GetValue<float>()).ToArray();
            bool wrong = scores.Length != request.Expected.Length || scores.Where((s, k) => Math.Abs(s - request.Expected[k]) > Tolerance).Any();
            return new RankOutcome(index, sent, clock.Elapsed, response.StatusCode, wrong, wrong ? body : null);
        }
        catch (HttpRequestException e)
        {
            return new RankOutcome(index, sent, clock.Elapsed, 0, false, e.Message);
        }
    }

    public static string Describe(RankOutcome o) =>
        string.Create(CultureInfo.InvariantCulture, $"#{o.Index} sent {o.Sent.TotalMilliseconds:0} ms -> {(int)o.Status} after {(o.Done - o.Sent).TotalMilliseconds:0} ms{(o.Error is null ? "" : ": " + (o.Error.Length > 200 ? o.Error[..200] : o.Error))}");
}
