using System.Buffers;
using Recsys.DenseCompute.Gemm;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Dlrm;

/// <summary>
/// The dense part of a DLRM: bottom MLP (ReLU after every layer), interaction, top MLP (ReLU
/// between layers, sigmoid after the last). Embedding lookups happen elsewhere — locally or on
/// shard grains — and arrive as pooled vectors, so this type is the same on every path.
/// Each Linear layer runs at the precision model.json gives it (<see cref="DlrmSpec.Precision"/>).
/// </summary>
public sealed class DlrmDense
{
    private readonly IDenseLayer[] _bottom;
    private readonly IDenseLayer[] _top;
    private readonly Interaction _interaction;
    private readonly int _bottomWidest;
    private readonly int _topWidest;

    private DlrmDense(DlrmSpec spec, IDenseLayer[] bottom, IDenseLayer[] top)
    {
        Spec = spec;
        _bottom = bottom;
        _top = top;
        _interaction = new Interaction(spec);
        // Computed once: the scratch size of every forward pass, which must not allocate.
        _bottomWidest = bottom.Length == 0 ? 0 : bottom.Max(l => l.OutFeatures);
        _topWidest = top.Max(l => l.OutFeatures);
    }

    public DlrmSpec Spec { get; }
    public Interaction Interaction => _interaction;

    /// <summary>Threads a single GEMM may use (1 keeps a request on one core; batches of hundreds gain from 2).</summary>
    public int MaxThreads { get; set; } = 1;

    public static DlrmDense Load(DlrmSpec spec, SafeTensorsFile weights)
    {
        var bottom = new IDenseLayer[spec.BottomMlp.Length];
        int inputs = spec.DenseFeatures;
        for (int i = 0; i < bottom.Length; i++)
        {
            int outputs = spec.BottomMlp[i];
            // Dense features may be negative; every later layer reads a ReLU output (net-aware int8 range).
            string name = DensePrecision.BottomLayer(i);
            bottom[i] = DenseLayers.Create(
                spec.Precision.For(name),
                weights.ReadFloats(DlrmSpec.BottomWeightName(i), outputs, inputs),
                weights.ReadFloats(DlrmSpec.BottomBiasName(i), outputs),
                outputs, inputs, Activation.Relu, inputNonNegative: i > 0, spec.Precision.Int8OptionsFor(name, i > 0));
            inputs = outputs;
        }
        var top = new IDenseLayer[spec.TopMlp.Length];
        inputs = spec.InteractionOutput;
        for (int i = 0; i < top.Length; i++)
        {
            int outputs = spec.TopMlp[i];
            // The interaction output holds dot products of any sign; later top layers read ReLU outputs.
            string name = DensePrecision.TopLayer(i);
            top[i] = DenseLayers.Create(
                spec.Precision.For(name),
                weights.ReadFloats(DlrmSpec.TopWeightName(i), outputs, inputs),
                weights.ReadFloats(DlrmSpec.TopBiasName(i), outputs),
                outputs, inputs, i == top.Length - 1 ? Activation.Sigmoid : Activation.Relu, inputNonNegative: i > 0, spec.Precision.Int8OptionsFor(name, i > 0));
            inputs = outputs;
        }
        return new DlrmDense(spec, bottom, top);
    }

    /// <summary>The Linear layers of the bottom MLP, then the top MLP, as loaded.</summary>
    public IReadOnlyList<IDenseLayer> BottomLayers => _bottom;
    public IReadOnlyList<IDenseLayer> TopLayers => _top;

    /// <summary>bottomOut[batch x BottomOutput] from dense[batch x DenseFeatures].</summary>
    public void Bottom(ReadOnlySpan<float> dense, int batch, Span<float> bottomOut)
    {
        if (_bottom.Length == 0)
        {
            dense[..(batch * Spec.DenseFeatures)].CopyTo(bottomOut);
            return;
        }
        RunMlp(_bottom, dense, batch, bottomOut);
    }

    /// <summary>scores[batch x Events] from the bottom output and the pooled embeddings (see <see cref="Interaction.Forward"/>).</summary>
    public void Top(ReadOnlySpan<float> bottomOut, ReadOnlySpan<float> pooled, int batch, Span<float> scores)
    {
        float[] z = ArrayPool<float>.Shared.Rent(Math.Max(1, batch * _interaction.OutputWidth));
        try
        {
            _interaction.Forward(bottomOut, pooled, batch, z);
            RunMlp(_top, z.AsSpan(0, batch * _interaction.OutputWidth), batch, scores);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(z);
        }
    }

    private void RunMlp(IDenseLayer[] layers, ReadOnlySpan<float> input, int batch, Span<float> output)
    {
        int widest = layers == _bottom ? _bottomWidest : _topWidest;
        float[] a = ArrayPool<float>.Shared.Rent(Math.Max(1, batch * widest));
        float[] b = ArrayPool<float>.Shared.Rent(Math.Max(1, batch * widest));
        try
        {
            ReadOnlySpan<float> x = input;
            for (int i = 0; i < layers.Length; i++)
            {
                IDenseLayer layer = layers[i];
                Span<float> y = i == layers.Length - 1 ? output : (i % 2 == 0 ? a : b).AsSpan(0, batch * layer.OutFeatures);
                layer.Forward(x, batch, y, MaxThreads);
                x = y;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(a);
            ArrayPool<float>.Shared.Return(b);
        }
    }
}
