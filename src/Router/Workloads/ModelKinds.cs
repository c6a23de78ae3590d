using Recsys.DenseCompute.Models;

namespace Recsys.Router.Workloads;

/// <summary>Which path serves a model: ranking (ModelRegistry) or a workload loader.</summary>
public static class ModelKinds
{
    public const string Dlrm = "dlrm";

    /// <summary>True when the newest version is a DLRM, or when its model.json cannot be read (the ranking path reports that error).</summary>
    public static bool IsDlrm(ModelRepository repository, string name)
    {
        string? version = repository.NewestVersion(name);
        if (version is null) return true;
        try
        {
            return repository.LoadSpec(name, version).Kind == Dlrm;
        }
        catch (ModelFileException)
        {
            return true;
        }
    }
}
