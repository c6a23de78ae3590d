using System.Collections.Concurrent;
using Recsys.DenseCompute.Models;

namespace Recsys.Router.Workloads;

/// <summary>
/// The non-DLRM models this front end serves, newest version of each, loaded at start by the
/// loader registered for their kind. A model whose kind no loader knows fails its load with the
/// kind named, and the others still load.
/// </summary>
public sealed class WorkloadRegistry(ModelRepository repository, IEnumerable<IWorkloadLoader> loaders) : IAsyncDisposable
{
    private readonly Dictionary<string, IWorkloadLoader> _byKind = loaders.SelectMany(l => l.Kinds.Select(k => (k, l))).ToDictionary(x => x.k, x => x.l, StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IServedWorkload> _models = new(StringComparer.Ordinal);

    public ModelRepository Repository => repository;

    public IEnumerable<IServedWorkload> Current => _models.Values;

    public IReadOnlyCollection<string> KnownKinds => _byKind.Keys;

    public bool TryGet(string name, out IServedWorkload model) => _models.TryGetValue(name, out model!);

    /// <summary>Names of the models whose newest version is not a DLRM.</summary>
    public IReadOnlyList<string> ModelNames() => [.. repository.ModelNames().Where(n => !ModelKinds.IsDlrm(repository, n))];

    /// <summary>True when every non-DLRM model on disk is loaded.</summary>
    public bool IsReady => ModelNames().All(_models.ContainsKey);

    /// <summary>Loads the newest version of one model, replacing (and disposing) the version served before.</summary>
    public async Task<IServedWorkload> LoadNewestAsync(string name, CancellationToken cancel = default)
    {
        string version = repository.NewestVersion(name) ?? throw new ModelFileException(name, "version", $"model '{name}' has no version under {repository.Root}");
        ModelSpec spec = repository.LoadSpec(name, version);
        if (!_byKind.TryGetValue(spec.Kind, out IWorkloadLoader? loader))
        {
            throw new ModelFileException(spec.File, "kind", $"'{spec.Kind}' is not served by this front end (kinds: dlrm, {string.Join(", ", _byKind.Keys.Order(StringComparer.Ordinal))})");
        }
        IServedWorkload loaded = await loader.LoadAsync(name, version, spec, cancel).ConfigureAwait(false);
        // Swap first, retire after: requests arriving during the drain already reach the new version.
        IServedWorkload? old = null;
        _models.AddOrUpdate(name, loaded, (_, previous) =>
        {
            old = previous;
            return loaded;
        });
        if (old is not null) await old.DisposeAsync().ConfigureAwait(false);
        return loaded;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (IServedWorkload m in _models.Values) await m.DisposeAsync().ConfigureAwait(false);
        _models.Clear();
    }
}
