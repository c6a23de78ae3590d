using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Hosting;
using Recsys.Router.Metrics;
using Recsys.Router.Scheduling;
using Recsys.Router.Vision;
using static Recsys.Router.Tests.VisionServer;

namespace Recsys.Router.Tests;

/// <summary>A version being replaced refuses new work with 503 + Retry-After (a scheduler refusal), after answering what it already took.</summary>
public sealed class VisionRetireTests
{
    [Fact]
    public async Task A_retired_model_answers_503_with_retry_after_naming_the_model()
    {
        using var scheduler = new ComputeScheduler(1);
        var workload = new VisionWorkload("resnext", "1", "classification",
            VisionModel.Load(ModelSpec.Load(Path.Combine(FixtureRoot, "resnext", "1", "model.json"))),
            // A deadline far past the 1 s default: this is about retiring, and a cold first run on a loaded machine can take over a second.
            scheduler, new ServeOptions { Deadline = TimeSpan.FromSeconds(30) }, new ServingMetrics());
        Case c = Cases("resnext")[1];

        var before = new DefaultHttpContext { Response = { Body = new MemoryStream() } };
        await VisionCall.ServeAsync(before, workload, async call =>
        {
            IReadOnlyDictionary<string, HostTensor> outputs = await workload.RunAsync(new GraphRequest(c.Inputs), call);
            AssertClose(c.Outputs["probs"].Floats, outputs["probs"].Floats, 1e-5, "probs before retiring");
        });
        Assert.Equal(200, before.Response.StatusCode);

        await workload.DisposeAsync();
        var after = new DefaultHttpContext { Response = { Body = new MemoryStream() } };
        await VisionCall.ServeAsync(after, workload, async call => await workload.RunAsync(new GraphRequest(c.Inputs), call));
        Assert.Equal(503, after.Response.StatusCode);
        Assert.Equal("1", after.Response.Headers.RetryAfter.ToString());
        JsonNode error = JsonNode.Parse(((MemoryStream)after.Response.Body).ToArray())!;
        Assert.Equal("model", error["field"]!.GetValue<string>());
        Assert.Contains("'resnext'", error["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
