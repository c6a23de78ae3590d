using Recsys.DenseCompute.Models;

namespace Recsys.Router.Hosting;

/// <summary>Registers the embedding shard grains on a silo whose role includes embedding.</summary>
internal static class EmbeddingHosting
{
    public static void AddShards(ISiloBuilder silo, ServeOptions options, ModelRepository repository)
    {
        // Filled in when the shard grain lands (AddEmbeddingShards).
        _ = silo;
        _ = options;
        _ = repository;
    }
}
