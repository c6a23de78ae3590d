namespace Recsys.DenseCompute.Gemm;

/// <summary>The epilogue fused after bias into a Linear layer's output.</summary>
public enum Activation
{
    None,
    Relu,
    Sigmoid,
}
