using Recsys.DenseCompute.Models;
using Recsys.EmbeddingGrains.Hosting;

namespace Recsys.Router.Hosting;

/// <summary>Every silo registers the shard placement; only silos with the embedding role host shards.</summary>
internal static class EmbeddingHosting
{
    public static void AddShards(ISiloBuilder silo, ServeOptions options, ModelRepository repository)
    {
        string[] roles = options.Role switch
        {
            SiloRole.Frontend => ["frontend"],
            SiloRole.Embedding => [EmbeddingShardOptions.EmbeddingRole],
            _ => ["frontend", EmbeddingShardOptions.EmbeddingRole],
        };
        silo.AddEmbeddingShards(o =>
        {
            o.DataDirectory = Path.GetFullPath(options.DataDirectory);
            o.ModelsDirectory = repository.Root;
            o.MemoryBudgetBytes = options.EmbeddingMemoryBytes;
            o.Roles = roles;
        });
    }
}
