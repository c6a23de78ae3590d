using System.Text.Json;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.EmbeddingGrains.Loading;

/// <summary>
/// Written beside a shard's FASTER store after its first complete checkpoint. A store is recovered
/// only if its manifest matches the table the model version declares; a store without one
/// (a load interrupted before its checkpoint) is wiped and loaded again.
/// </summary>
internal sealed record ShardManifest(string Model, string Version, string Table, int Shard, int Shards, long Rows, int Dim, string Format)
{
    public const string FileName = "shard.json";

    public static ShardManifest? TryRead(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<ShardManifest>(File.ReadAllText(path));
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Write(string directory)
    {
        string path = Path.Combine(directory, FileName);
        string temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this));
        File.Move(temp, path, overwrite: true);
    }

    public static ShardManifest For(string model, string version, string table, int shard, int shards, long rows, int dim, RowFormat format) =>
        new(model, version, table, shard, shards, rows, dim, RowLayout.Name(format));
}
