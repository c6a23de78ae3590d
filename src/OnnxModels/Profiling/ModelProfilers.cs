using Recsys.DenseCompute.Characterization;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.OnnxModels.Profiling;

/// <summary>A profiler and what it keeps loaded (a DLRM's tables), released together.</summary>
public sealed class OpenedProfiler(IModelProfiler profiler, IDisposable? owned) : IDisposable
{
    public IModelProfiler Profiler { get; } = profiler;

    public void Dispose() => owned?.Dispose();
}

/// <summary>The profiler for a model version directory, by model.json kind: `recsys characterize` and the server's profile endpoint both open models here.</summary>
public static class ModelProfilers
{
    public static bool Supports(string kind) => kind == "dlrm" || OnnxWorkloads.IsOnnxKind(kind);

    /// <exception cref="ModelFileException">model.json or a file it names is wrong, or the kind cannot be characterized.</exception>
    public static OpenedProfiler Open(string directory, string name)
    {
        ModelSpec spec = ModelSpec.Load(Path.Combine(directory, "model.json"));
        if (spec.Dlrm is not null)
        {
            DlrmModel model = DlrmModel.Load(directory);
            return new OpenedProfiler(new DlrmProfiler(model, name), model);
        }
        if (OnnxWorkloads.IsOnnxKind(spec.Kind)) return new OpenedProfiler(OnnxWorkloads.Profiler(spec, name), null);
        throw new ModelFileException(spec.File, "kind", $"'{spec.Kind}' cannot be characterized (dlrm, classification, detection, video, seq2seq can)");
    }
}
