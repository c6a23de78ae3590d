namespace Recsys.DenseCompute.Embeddings;

/// <summary>How the rows of one bag combine (PyTorch EmbeddingBag modes).</summary>
public enum Pooling
{
    Sum,
    Mean,
}
