using System.Text.Json;
using System.Text.Json.Nodes;
using Recsys.Cli.Bench.Workload;
using Recsys.Cli.Commands;
using Recsys.DenseCompute.Models;
using Recsys.Router.Hosting;

using Recsys.Tests.Shared;

namespace Recsys.Router.Tests;

/// <summary>`recsys bench memory` against a real single-node server: its accounting equals the models it wrote.</summary>
public sealed class BenchMemoryTests
{
    [Fact]
    public async Task Each_step_adds_one_model_and_the_report_counts_its_rows()
    {
        string root = Path.Combine(Path.GetTempPath(), "recsys-bench-memory-" + Guid.NewGuid().ToString("N")[..8]);
        string models = Path.Combine(root, "models");
        Directory.CreateDirectory(models);
        var options = new ServeOptions
        {
            ModelsDirectory = models,
            DataDirectory = Path.Combine(root, "data"),
            Port = 0,
            SiloPort = LoopbackPorts.Free(),
            GatewayPort = LoopbackPorts.Free(),
            ClusterId = "bench-memory-" + Guid.NewGuid().ToString("N")[..6],
            ApiKey = "k",
            WriteDemoModelWhenEmpty = false,
            Deadline = TimeSpan.FromSeconds(20),
        };
        await using RecsysServer server = await RecsysServer.StartAsync(options, TextWriter.Null);
        var stdout = new StringWriter();
        int exit = await BenchCommand.RunAsync(
            ["memory", "--url", server.Address.ToString(), "--models", models, "--api-key", "k", "--preset", "kaggle-small", "--scale", "0.01",
             "--steps", "2", "--qps", "5", "--duration", "1s", "--warmup", "0s", "--batch-dist", "fixed:4", "--timeout", "30s", "--json", "--quiet", "--plot", Path.Combine(root, "memory.svg")],
            stdout, TextWriter.Null, CancellationToken.None);
        Assert.Equal(0, exit);

        DlrmSpec spec = new ModelRepository(models).LoadSpec("memcap-1", "1").RequireDlrm();
        long rowsPerModel = spec.Tables.Sum(t => t.Rows);
        using JsonDocument doc = JsonDocument.Parse(stdout.ToString());
        JsonElement[] steps = [.. doc.RootElement.GetProperty("steps").EnumerateArray()];
        Assert.Equal(2, steps.Length);
        for (int k = 0; k < 2; k++)
        {
            JsonElement s = steps[k];
            Assert.Equal($"memcap-{k + 1}", s.GetProperty("model").GetString());
            Assert.Equal(rowsPerModel, s.GetProperty("model_rows").GetInt64());
            Assert.Equal(rowsPerModel * (k + 1), s.GetProperty("rows_held").GetInt64());
            // The default budget holds these small models whole.
            Assert.Equal(rowsPerModel * (k + 1), s.GetProperty("resident_rows").GetInt64());
            Assert.Equal(1.0, s.GetProperty("model_resident_fraction").GetDouble());
            Assert.Equal(1e9 / spec.Tables[0].RowBytes, s.GetProperty("rows_per_resident_gb").GetDouble(), 3);
            Assert.True(s.GetProperty("ok").GetInt64() > 0);
            Assert.Equal(0, s.GetProperty("errors").GetInt64());
            Assert.True(s.GetProperty("p50").GetDouble() <= s.GetProperty("p99").GetDouble());
        }
        Assert.Contains("<svg", File.ReadAllText(Path.Combine(root, "memory.svg")), StringComparison.Ordinal);

        // The KServe metadata carries each table's rows and pooling factor: a load generator needs no repository.
        using var http = new HttpClient { BaseAddress = server.Address };
        JsonNode metadata = JsonNode.Parse(await http.GetStringAsync("v2/models/memcap-1"))!;
        WorkloadShape shape = WorkloadShape.FromKServeMetadata("memcap-1", metadata, rows: null, lookups: null);
        Assert.Equal(spec.Tables.Select(t => (t.Name, t.Rows, t.Lookups, t.RowBytes)), shape.Tables.Select(t => (t.Name, t.Rows, t.Lookups, t.RowBytes)));
    }
}
