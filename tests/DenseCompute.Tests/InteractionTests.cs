using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

/// <summary>Interaction.Forward against a naive transcription of the reference's interact_features.</summary>
public class InteractionTests
{
    [Theory]
    [InlineData(InteractionKind.Dot, false, 1, new[] { 4, 4, 4 })]
    [InlineData(InteractionKind.Dot, false, 5, new[] { 8, 8 })]
    [InlineData(InteractionKind.Dot, true, 3, new[] { 4, 4, 4, 4 })]
    [InlineData(InteractionKind.Dot, true, 1, new int[0])]
    [InlineData(InteractionKind.Dot, false, 2, new[] { 17, 17, 17, 17, 17 })]
    [InlineData(InteractionKind.Cat, false, 4, new[] { 3, 5, 1 })]
    [InlineData(InteractionKind.Cat, false, 1, new[] { 16 })]
    public void Forward_matches_the_reference_order(InteractionKind kind, bool itself, int batch, int[] tableDims)
    {
        int d = kind == InteractionKind.Dot ? (tableDims.Length > 0 ? tableDims[0] : 4) : 6;
        var spec = new DlrmSpec(3, [d], [1], kind, itself,
            [.. tableDims.Select((dim, t) => new TableSpec($"T{t}", 10, dim, Pooling.Sum, RowFormat.Fp32, 1))], "w");
        var rng = new Random(7);
        float[] bottom = [.. Enumerable.Range(0, batch * d).Select(_ => (float)(rng.NextDouble() * 2 - 1))];
        float[] pooled = [.. Enumerable.Range(0, batch * tableDims.Sum()).Select(_ => (float)(rng.NextDouble() * 2 - 1))];
        var interaction = new Interaction(spec);
        var output = new float[batch * interaction.OutputWidth];

        interaction.Forward(bottom, pooled, batch, output);

        float[] expected = Naive(kind, itself, bottom, pooled, batch, d, tableDims);
        Assert.Equal(expected.Length, output.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - output[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"output {i}: {output[i]} vs {expected[i]}");
    }

    [Fact]
    public void Output_width_follows_the_reference_formula()
    {
        TableSpec T(int dim) => new("t", 5, dim, Pooling.Sum, RowFormat.Fp32, 1);
        // 26 tables + bottom output: 27 * 26 / 2 = 351 pairs after the 16-wide bottom output (Criteo Kaggle).
        Assert.Equal(16 + 351, new DlrmSpec(13, [16], [1], InteractionKind.Dot, false, [.. Enumerable.Range(0, 26).Select(_ => T(16))], "w").InteractionOutput);
        Assert.Equal(16 + 378, new DlrmSpec(13, [16], [1], InteractionKind.Dot, true, [.. Enumerable.Range(0, 26).Select(_ => T(16))], "w").InteractionOutput);
        Assert.Equal(16 + 3 + 5, new DlrmSpec(13, [16], [1], InteractionKind.Cat, false, [T(3), T(5)], "w").InteractionOutput);
    }

    /// <summary>
    /// T = cat([x] + ly).view(batch, -1, d); Z = T Tᵀ; R = cat([x, Z[:, li, lj]]) with
    /// li/lj = [(i, j) for i in range(n) for j in range(i + offset)] — the reference's loops.
    /// </summary>
    private static float[] Naive(InteractionKind kind, bool itself, float[] bottom, float[] pooled, int batch, int d, int[] dims)
    {
        var rows = new List<float>();
        for (int b = 0; b < batch; b++)
        {
            var vectors = new List<float[]> { bottom[(b * d)..((b + 1) * d)] };
            int block = 0;
            foreach (int dim in dims)
            {
                vectors.Add(pooled[(block + b * dim)..(block + (b + 1) * dim)]);
                block += batch * dim;
            }
            rows.AddRange(vectors[0]);
            if (kind == InteractionKind.Cat)
            {
                foreach (float[] v in vectors.Skip(1)) rows.AddRange(v);
                continue;
            }
            int offset = itself ? 1 : 0;
            for (int i = 0; i < vectors.Count; i++)
            {
                for (int j = 0; j < i + offset; j++)
                {
                    double s = 0;
                    for (int k = 0; k < d; k++) s += (double)vectors[i][k] * vectors[j][k];
                    rows.Add((float)s);
                }
            }
        }
        return [.. rows];
    }
}
