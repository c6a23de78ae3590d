using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Models;

/// <summary>How the reference DLRM combines the bottom-MLP output with the pooled embeddings.</summary>
public enum InteractionKind
{
    /// <summary>Pairwise dot products (lower triangle), concatenated after the bottom output.</summary>
    Dot,
    /// <summary>Plain concatenation of the bottom output and every pooled embedding.</summary>
    Cat,
}

/// <summary>One embedding table of a DLRM as model.json declares it.</summary>
/// <param name="Lookups">Typical ids per bag (the pooling factor); load generators use it, serving does not.</param>
public sealed record TableSpec(string Name, long Rows, int Dim, Pooling Pooling, RowFormat Storage, int Shards, int Lookups = 1)
{
    public int RowBytes => RowLayout.RowBytes(Storage, Dim);

    /// <summary>Copies of every shard (model.json "replicas", default 1), each its own grain on its own silo while there are enough embedding silos.</summary>
    public int Replicas { get; init; } = 1;
}

/// <summary>
/// The shape of a DLRM: dense features, the MLP widths, the interaction and the tables.
/// Weight names follow the reference PyTorch DLRM's state_dict.
/// </summary>
public sealed record DlrmSpec(
    int DenseFeatures,
    int[] BottomMlp,
    int[] TopMlp,
    InteractionKind Interaction,
    bool InteractionItself,
    TableSpec[] Tables,
    string WeightsFile)
{
    /// <summary>Precision of each Linear layer (model.json "precision"); fp32 everywhere unless set.</summary>
    public DensePrecision Precision { get; init; } = DensePrecision.Fp32;

    /// <summary>Width of the bottom MLP output, the first vector of the interaction.</summary>
    public int BottomOutput => BottomMlp.Length == 0 ? DenseFeatures : BottomMlp[^1];

    /// <summary>Number of events scored per sample (the top MLP's last width).</summary>
    public int Events => TopMlp[^1];

    /// <summary>Width of the interaction output, which is the top MLP's input.</summary>
    public int InteractionOutput
    {
        get
        {
            int vectors = Tables.Length + 1;
            return Interaction switch
            {
                InteractionKind.Dot => BottomOutput + (InteractionItself ? vectors * (vectors + 1) / 2 : vectors * (vectors - 1) / 2),
                _ => BottomOutput + Tables.Sum(t => t.Dim),
            };
        }
    }

    public static string EmbeddingWeightName(int table) => $"emb_l.{table}.weight";
    public static string BottomWeightName(int layer) => $"bot_l.{2 * layer}.weight";
    public static string BottomBiasName(int layer) => $"bot_l.{2 * layer}.bias";
    public static string TopWeightName(int layer) => $"top_l.{2 * layer}.weight";
    public static string TopBiasName(int layer) => $"top_l.{2 * layer}.bias";

    public int TableIndex(string name)
    {
        for (int i = 0; i < Tables.Length; i++)
        {
            if (Tables[i].Name == name) return i;
        }
        return -1;
    }
}
