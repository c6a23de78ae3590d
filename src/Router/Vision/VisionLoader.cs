using Microsoft.Extensions.DependencyInjection;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Hosting;
using Recsys.Router.Metrics;
using Recsys.Router.Scheduling;
using Recsys.Router.Workloads;

namespace Recsys.Router.Vision;

/// <summary>Loads classification, detection and video models: ONNX graph (or frame sampling) from model.json, one queue each on the compute scheduler.</summary>
internal sealed class VisionLoader(IServiceProvider services) : IWorkloadLoader
{
    public IReadOnlyCollection<string> Kinds { get; } = ["classification", "detection", "video"];

    public Task<IServedWorkload> LoadAsync(string name, string version, ModelSpec spec, CancellationToken cancel)
    {
        // Opening a session reads and optimises the graph: seconds for big models, off the caller's thread.
        return Task.Run<IServedWorkload>(() =>
        {
            VisionModel model = VisionModel.Load(spec);
            return new VisionWorkload(name, version, spec.Kind, model,
                services.GetRequiredService<ComputeScheduler>(),
                services.GetRequiredService<ServeOptions>(),
                services.GetRequiredService<ServingMetrics>());
        }, cancel);
    }
}
