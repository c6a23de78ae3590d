using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Dlrm;

/// <summary>
/// The reference DLRM's feature interaction. With T = [x, e_0, ..., e_{n-1}] per sample, "dot"
/// emits x followed by T_i·T_j for i in 0..n, j in 0..i-1 (j in 0..i with interaction_itself),
/// row-major over the lower triangle, exactly the order of the reference's li/lj index lists.
/// "cat" emits x followed by every e_t.
/// </summary>
public sealed class Interaction
{
    private readonly InteractionKind _kind;
    private readonly bool _itself;
    private readonly int[] _dims;
    private readonly int _bottomDim;

    public Interaction(DlrmSpec spec)
    {
        _kind = spec.Interaction;
        _itself = spec.InteractionItself;
        _dims = spec.Tables.Select(t => t.Dim).ToArray();
        _bottomDim = spec.BottomOutput;
        OutputWidth = spec.InteractionOutput;
    }

    public int OutputWidth { get; }

    /// <summary>Floats of the pooled input for a batch: per table a batch x dim block, in table order.</summary>
    public int PooledLength(int batch) => batch * _dims.Sum();

    /// <param name="bottom">batch x bottomDim</param>
    /// <param name="pooled">per table t, a batch x dim_t block, blocks in table order</param>
    /// <param name="output">batch x OutputWidth</param>
    public void Forward(ReadOnlySpan<float> bottom, ReadOnlySpan<float> pooled, int batch, Span<float> output)
    {
        int d = _bottomDim;
        for (int b = 0; b < batch; b++)
        {
            Span<float> row = output.Slice(b * OutputWidth, OutputWidth);
            ReadOnlySpan<float> x = bottom.Slice(b * d, d);
            x.CopyTo(row);
            int w = d;
            if (_kind == InteractionKind.Cat)
            {
                int blockStart = 0;
                foreach (int dim in _dims)
                {
                    pooled.Slice(blockStart + b * dim, dim).CopyTo(row[w..]);
                    w += dim;
                    blockStart += batch * dim;
                }
                continue;
            }
            int vectors = _dims.Length + 1;
            for (int i = 0; i < vectors; i++)
            {
                ReadOnlySpan<float> vi = Vector(x, pooled, batch, b, i, d);
                int jEnd = _itself ? i + 1 : i;
                for (int j = 0; j < jEnd; j++)
                {
                    row[w++] = System.Numerics.Tensors.TensorPrimitives.Dot(vi, Vector(x, pooled, batch, b, j, d));
                }
            }
        }
    }

    private static ReadOnlySpan<float> Vector(ReadOnlySpan<float> x, ReadOnlySpan<float> pooled, int batch, int b, int index, int d) =>
        index == 0 ? x : pooled.Slice((index - 1) * batch * d + b * d, d);
}
