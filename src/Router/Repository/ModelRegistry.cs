using System.Collections.Concurrent;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Serving;
using Recsys.Router.Batching;
using Recsys.Router.Metrics;
using Recsys.Router.Scheduling;
using Recsys.Router.Workloads;

namespace Recsys.Router.Repository;

/// <summary>Why a model or version cannot serve: answered 404 with the field named.</summary>
public sealed class ModelNotFoundException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>
/// The models this front end serves: per name the current version (the newest at load time) and
/// any version a request pinned. Loading a new version swaps the current pointer first and retires
/// the old version after, so requests already holding it finish on it.
/// </summary>
public sealed class ModelRegistry : IAsyncDisposable
{
    private readonly ModelRepository _repository;
    private readonly IGrainFactory _grains;
    private readonly ServingMetrics _metrics;
    private readonly BatchingOptions _batching;
    private readonly LocalResidentShards? _localShards;
    private readonly ConcurrentDictionary<string, ModelEntry> _models = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _loadLock = new(1, 1);

    /// <param name="scheduler">The front end's compute scheduler: every model's batches run their CPU work as Ranking units on it.</param>
    /// <param name="localShards">This silo's resident shards, when it hosts shards: their lookups are pooled in place.</param>
    public ModelRegistry(ModelRepository repository, IGrainFactory grains, ServingMetrics metrics, BatchingOptions batching, ComputeScheduler? scheduler = null, LocalResidentShards? localShards = null)
    {
        _repository = repository;
        _localShards = localShards;
        _grains = grains;
        _metrics = metrics;
        // The engine takes its own slots around the dense steps, so shard lookups hold no compute worker.
        _batching = scheduler is null ? batching : batching with { Scheduler = scheduler, EngineTakesSlots = true };
    }

    public ModelRepository Repository => _repository;

    /// <summary>The ranking models on disk: those whose newest version is a DLRM (other kinds are served by <see cref="WorkloadRegistry"/>).</summary>
    public IReadOnlyList<string> ModelNames() => [.. _repository.ModelNames().Where(n => ModelKinds.IsDlrm(_repository, n))];

    /// <summary>True when every ranking model on disk has a current version loaded.</summary>
    public bool IsReady => ModelNames().All(m => _models.TryGetValue(m, out ModelEntry? e) && e.Current is not null);

    public bool IsServed(string name) => _models.ContainsKey(name);

    public IEnumerable<ServedModel> Current => _models.Values.Select(e => e.Current).OfType<ServedModel>();

    /// <summary>Loads the newest version of a model and makes it current; the previous version drains and unloads.</summary>
    public async Task<ServedModel> LoadNewestAsync(string name, IProgress<(long Loaded, long Total)>? progress = null, CancellationToken cancel = default)
    {
        string version = _repository.NewestVersion(name) ?? throw new ModelNotFoundException("name", $"model '{name}' has no version under {_repository.Root}");
        await _loadLock.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            ModelEntry entry = _models.GetOrAdd(name, _ => new ModelEntry());
            if (entry.Current is { } current && current.Version == version) return current;
            ServedModel loaded = entry.Versions.TryGetValue(version, out ServedModel? pinned) ? pinned : await LoadVersionAsync(name, version, progress, cancel).ConfigureAwait(false);
            entry.Versions[version] = loaded;
            entry.Current = loaded;
            foreach ((string old, ServedModel model) in entry.Versions.ToArray())
            {
                if (old == version) continue;
                entry.Versions.TryRemove(old, out _);
                model.Retire();
            }
            return loaded;
        }
        finally
        {
            _loadLock.Release();
        }
    }

    /// <summary>A lease on the version that serves this request; the caller must <see cref="ServedModel.Release"/> it.</summary>
    public async ValueTask<ServedModel> AcquireAsync(string name, string? version, CancellationToken cancel = default)
    {
        if (!ModelRepository.IsSafeName(name) || !_models.TryGetValue(name, out ModelEntry? entry))
        {
            throw new ModelNotFoundException("name", $"model '{name}' is not served");
        }
        while (true)
        {
            ServedModel? model;
            if (version is null || version == entry.Current?.Version)
            {
                model = entry.Current ?? throw new ModelNotFoundException("name", $"model '{name}' is still loading");
            }
            else if (!entry.Versions.TryGetValue(version, out model))
            {
                model = await LoadPinnedAsync(name, version, entry, cancel).ConfigureAwait(false);
            }
            if (model.TryAcquire()) return model;
            // Retired between the lookup and the lease: the entry already points at its successor.
        }
    }

    private async Task<ServedModel> LoadPinnedAsync(string name, string version, ModelEntry entry, CancellationToken cancel)
    {
        if (!ModelRepository.IsSafeName(version) || !_repository.Versions(name).Contains(version))
        {
            throw new ModelNotFoundException("version", $"model '{name}' has no version '{version}' (versions: {string.Join(", ", _repository.Versions(name))})");
        }
        await _loadLock.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            if (entry.Versions.TryGetValue(version, out ServedModel? model)) return model;
            model = await LoadVersionAsync(name, version, null, cancel).ConfigureAwait(false);
            entry.Versions[version] = model;
            return model;
        }
        finally
        {
            _loadLock.Release();
        }
    }

    private async Task<ServedModel> LoadVersionAsync(string name, string version, IProgress<(long Loaded, long Total)>? progress, CancellationToken cancel)
    {
        ModelSpec file = _repository.LoadSpec(name, version);
        DlrmSpec spec = file.RequireDlrm();
        DlrmDense dense;
        using (SafeTensorsFile weights = SafeTensorsFile.Open(Path.Combine(file.Directory, spec.WeightsFile)))
        {
            dense = DlrmDense.Load(spec, weights);
        }
        var model = new ServedModel(name, version, spec, dense, _grains, _metrics.For(name), _batching, _localShards);
        await model.WarmUpAsync(progress, cancel).ConfigureAwait(false);
        return model;
    }

    public async Task<IReadOnlyList<ShardCacheStats>> CacheStatsAsync(TimeSpan timeout)
    {
        var stats = new List<ShardCacheStats>();
        foreach (ServedModel m in Current.ToList())
        {
            try
            {
                stats.Add(await m.CacheStatsAsync().WaitAsync(timeout).ConfigureAwait(false));
            }
            catch (TimeoutException)
            {
                // A shard that is moving between silos must not stall the scrape.
            }
        }
        return stats;
    }

    /// <summary>Retires every version and waits for their in-flight requests to finish.</summary>
    public async ValueTask DisposeAsync()
    {
        var drains = new List<Task>();
        foreach (ModelEntry entry in _models.Values)
        {
            entry.Current = null;
            foreach (ServedModel m in entry.Versions.Values)
            {
                m.Retire();
                drains.Add(m.Drained);
            }
            entry.Versions.Clear();
        }
        await Task.WhenAll(drains).ConfigureAwait(false);
        _loadLock.Dispose();
    }

    private sealed class ModelEntry
    {
        private ServedModel? _current;

        public ServedModel? Current
        {
            get => Volatile.Read(ref _current);
            set => Volatile.Write(ref _current, value);
        }

        public ConcurrentDictionary<string, ServedModel> Versions { get; } = new(StringComparer.Ordinal);
    }
}
