namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// A Linear layer y = act(x · Wᵀ + b) with W stored out x in as PyTorch stores it,
/// packed once at load into the layout the GEMM kernel streams.
/// </summary>
public sealed class PackedLinear
{
    private readonly float[] _weight; // out x in, row-major
    private readonly float[] _bias;

    private PackedLinear(float[] weight, float[] bias, int outFeatures, int inFeatures, Activation activation)
    {
        _weight = weight;
        _bias = bias;
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
        Activation = activation;
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Activation Activation { get; }

    public static PackedLinear Pack(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outFeatures, int inFeatures, Activation activation)
    {
        if (weight.Length != outFeatures * inFeatures) throw new ArgumentException($"weight has {weight.Length} values, expected {outFeatures} x {inFeatures}", nameof(weight));
        if (bias.Length != outFeatures) throw new ArgumentException($"bias has {bias.Length} values, expected {outFeatures}", nameof(bias));
        return new PackedLinear(weight.ToArray(), bias.ToArray(), outFeatures, inFeatures, activation);
    }

    /// <summary>output[m x Out] = act(input[m x In] · Wᵀ + b).</summary>
    public void Forward(ReadOnlySpan<float> input, int m, Span<float> output, int maxThreads = 1)
    {
        _ = maxThreads;
        for (int r = 0; r < m; r++)
        {
            ReadOnlySpan<float> x = input.Slice(r * InFeatures, InFeatures);
            for (int o = 0; o < OutFeatures; o++)
            {
                float s = _bias[o];
                ReadOnlySpan<float> w = _weight.AsSpan(o * InFeatures, InFeatures);
                for (int k = 0; k < InFeatures; k++) s += x[k] * w[k];
                output[r * OutFeatures + o] = Activation switch
                {
                    Activation.Relu => MathF.Max(s, 0f),
                    Activation.Sigmoid => 1f / (1f + MathF.Exp(-s)),
                    _ => s,
                };
            }
        }
    }
}
