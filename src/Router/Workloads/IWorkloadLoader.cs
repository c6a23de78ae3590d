using Recsys.DenseCompute.Models;

namespace Recsys.Router.Workloads;

/// <summary>Builds served models of the kinds it names from their model.json (registered in <see cref="WorkloadKinds"/>).</summary>
public interface IWorkloadLoader
{
    IReadOnlyCollection<string> Kinds { get; }

    /// <exception cref="ModelFileException">model.json or a file it names is wrong; the message names the file and field.</exception>
    Task<IServedWorkload> LoadAsync(string name, string version, ModelSpec spec, CancellationToken cancel);
}
