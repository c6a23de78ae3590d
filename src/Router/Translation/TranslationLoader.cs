using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Seq2Seq;
using Recsys.Router.Hosting;
using Recsys.Router.Scheduling;
using Recsys.Router.Workloads;

namespace Recsys.Router.Translation;

/// <summary>Loads kind "seq2seq" models: checks model.json and both graphs, then serves them through one decode batch each.</summary>
internal sealed class TranslationLoader(ComputeScheduler scheduler, ServeOptions options) : IWorkloadLoader
{
    public IReadOnlyCollection<string> Kinds { get; } = [Seq2SeqSpec.Kind];

    public Task<IServedWorkload> LoadAsync(string name, string version, ModelSpec spec, CancellationToken cancel) =>
        Task.Run<IServedWorkload>(() => new TranslationWorkload(name, version, Seq2SeqModel.Load(spec), scheduler, options), cancel);
}
