using Recsys.DenseCompute.Characterization;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Tests;

/// <summary>
/// The accounting of small layers against numbers derived by hand in each test, from the
/// conventions of <see cref="OperatorAccounting"/>: a multiply-add is 2 flops, activations are
/// fp32 (4 B), ids are 8 B, bag offsets 4 B.
/// </summary>
public class CharacterizationAccountingTests
{
    private static TableSpec Table(string name, long rows, int dim, RowFormat format = RowFormat.Fp32, Pooling pooling = Pooling.Sum, int lookups = 1) =>
        new(name, rows, dim, pooling, format, 1, lookups);

    /// <summary>dense 3 -> bottom [4] -> dot with 2 tables of dim 4 -> top [2, 1]; interaction output 4 + 3 pairs = 7.</summary>
    private static DlrmSpec TinySpec(InteractionKind kind = InteractionKind.Dot) =>
        new(3, [4], [2, 1], kind, false, [Table("C1", 10, 4), Table("C2", 10, 4)], "weights.safetensors");

    [Fact]
    public void Linear_4x3_to_2_costs_what_the_hand_derivation_says()
    {
        // batch B=4, in I=3, out O=2, fp32:
        //   flops   = 2·B·I·O + B·O (bias) = 48 + 8 = 56
        //   weights = I·O·4 + O·4 (bias)   = 24 + 8 = 32 B
        //   in      = B·I·4 = 48 B, out = B·O·4 = 32 B, total 112 B
        OperatorCost fc = OperatorAccounting.Linear("fc", batch: 4, inFeatures: 3, outFeatures: 2);
        Assert.Equal(56, fc.Flops);
        Assert.Equal(32, fc.WeightBytes);
        Assert.Equal(48, fc.ActivationBytesIn);
        Assert.Equal(32, fc.ActivationBytesOut);
        Assert.Equal(112, fc.TotalBytes);
        Assert.Equal(56.0 / 32, fc.FlopsPerWeightByte);
        Assert.Equal(0.5, fc.FlopsPerByte);
        Assert.Equal(OperatorKind.Gemm, fc.Kind);
        Assert.Equal(ComputeUnit.Fp32, fc.Compute);
        Assert.False(fc.IsGather);
    }

    [Theory]
    // I·O = 6 weights: fp16 6·2 + 2·4 (bias) = 20 B; int8 6·1 + 2·(4 bias + 4 scale + 4 row sum) = 30 B.
    [InlineData(LayerPrecision.Fp16, 20, ComputeUnit.Fp32)]
    [InlineData(LayerPrecision.Int8, 30, ComputeUnit.Int8)]
    public void Linear_weight_bytes_follow_the_stored_precision(LayerPrecision precision, long weightBytes, ComputeUnit unit)
    {
        OperatorCost fc = OperatorAccounting.Linear("fc", 4, 3, 2, precision);
        Assert.Equal(weightBytes, fc.WeightBytes);
        Assert.Equal(56, fc.Flops);
        Assert.Equal(unit, fc.Compute);
    }

    [Fact]
    public void Embedding_bag_gathers_rows_at_the_stored_row_size()
    {
        // B=2 bags of L=3 ids on a 1000 x 4 fp32 table (16 B rows): 6 rows gathered.
        //   flops   = 6 rows · 4 adds = 24
        //   weights = 6 · 16 = 96 B
        //   in      = 6 ids · 8 + (B+1) offsets · 4 = 60 B; out = B·4·4 = 32 B
        OperatorCost bag = OperatorAccounting.EmbeddingBag("emb", 2, Table("T", 1000, 4), lookups: 3);
        Assert.Equal(24, bag.Flops);
        Assert.Equal(96, bag.WeightBytes);
        Assert.Equal(60, bag.ActivationBytesIn);
        Assert.Equal(32, bag.ActivationBytesOut);
        Assert.Equal(16, bag.GatherRowBytes);
        Assert.Equal(0.25, bag.FlopsPerWeightByte);
        Assert.Equal(OperatorKind.EmbeddingLookup, bag.Kind);
    }

    [Fact]
    public void Quantized_rows_fold_a_multiply_in_and_mean_pooling_adds_a_divide_per_value()
    {
        // int8, dim 4: rows are 4 codes + fp32 scale + fp32 bias = 12 B; each value is a multiply-add.
        //   flops = 6 · 4 · 2 = 48, weights = 6 · 12 = 72 B
        OperatorCost int8 = OperatorAccounting.EmbeddingBag("emb", 2, Table("T", 1000, 4, RowFormat.Int8), lookups: 3);
        Assert.Equal(48, int8.Flops);
        Assert.Equal(72, int8.WeightBytes);
        Assert.Equal(12, int8.GatherRowBytes);
        // fp32 mean: 24 adds + B·dim = 8 multiplies by 1/L.
        OperatorCost mean = OperatorAccounting.EmbeddingBag("emb", 2, Table("T", 1000, 4, pooling: Pooling.Mean), lookups: 3);
        Assert.Equal(32, mean.Flops);
    }

    [Fact]
    public void Dot_interaction_costs_one_dot_product_per_pair()
    {
        // n = 3 vectors (bottom + 2 tables) of d = 4: 3 pairs. B = 2:
        //   flops = B · 3 pairs · 2d = 48
        //   in    = B · 3 vectors · 4 · 4 B = 96 B; out = B · (4 + 3) · 4 B = 56 B; no weights
        OperatorCost dot = OperatorAccounting.Interaction("i", 2, TinySpec());
        Assert.Equal(48, dot.Flops);
        Assert.Equal(0, dot.WeightBytes);
        Assert.Equal(96, dot.ActivationBytesIn);
        Assert.Equal(56, dot.ActivationBytesOut);
        Assert.Null(dot.FlopsPerWeightByte);
        Assert.Equal(48.0 / 152, dot.FlopsPerByte, 12);
        // cat: no flops, out = B · (4 + 4 + 4) · 4 B = 96 B.
        OperatorCost cat = OperatorAccounting.Interaction("i", 2, TinySpec(InteractionKind.Cat));
        Assert.Equal(0, cat.Flops);
        Assert.Equal(96, cat.ActivationBytesOut);
    }

    [Fact]
    public void Model_totals_count_dense_and_embedding_parameters_apart()
    {
        // bottom 3->4: 12 + 4 = 16; top 7->2: 14 + 2 = 16; top 2->1: 2 + 1 = 3; dense 35 params, 140 B fp32.
        // tables 2 x 10 x 4 = 80 params, 320 B fp32; at int8 rows of 4 + 8 B: 2 x 10 x 12 = 240 B.
        ParameterSummary p = DlrmAccounting.Parameters(TinySpec());
        Assert.Equal(35, p.DenseParameters);
        Assert.Equal(140, p.DenseBytes);
        Assert.Equal(80, p.EmbeddingParameters);
        Assert.Equal(320, p.EmbeddingBytes);
        DlrmSpec int8 = TinySpec() with { Tables = [Table("C1", 10, 4, RowFormat.Int8), Table("C2", 10, 4, RowFormat.Int8)] };
        Assert.Equal(240, DlrmAccounting.Parameters(int8).EmbeddingBytes);
        Assert.Equal("int8", DlrmAccounting.Parameters(int8).EmbeddingPrecision);
        // fp16 dense: 28 weights · 2 B + 7 fp32 biases · 4 B = 56 + 28 = 84 B.
        DlrmSpec fp16 = TinySpec() with { Precision = new DensePrecision(LayerPrecision.Fp16, new Dictionary<string, LayerPrecision>()) };
        Assert.Equal(84, DlrmAccounting.Parameters(fp16).DenseBytes);
        // int8 top.0 only (model.json per-layer override): 14 weights · 1 B + 2 outputs · 12 B = 38 B in place of 64.
        DlrmSpec mixed = TinySpec() with { Precision = new DensePrecision(LayerPrecision.Fp32, new Dictionary<string, LayerPrecision> { ["top.0"] = LayerPrecision.Int8 }) };
        Assert.Equal(140 - 64 + 38, DlrmAccounting.Parameters(mixed).DenseBytes);
        Assert.Equal(ComputeUnit.Int8, DlrmAccounting.Operators(mixed, 2).Single(o => o.Name == "top.0").Compute);
    }

    [Fact]
    public void Operators_run_in_the_order_of_the_forward_pass()
    {
        IReadOnlyList<OperatorCost> ops = DlrmAccounting.Operators(TinySpec(), 2);
        Assert.Equal(["bottom.0", "emb.C1", "emb.C2", "interaction", "top.0", "top.1"], ops.Select(o => o.Name));
        // top.0 reads the 7-wide interaction output: 2 · (2·7·2 + 2) = 60 flops.
        Assert.Equal(60, ops[4].Flops);
    }

    [Fact]
    public void Max_live_activations_of_the_tiny_model_at_batch_2()
    {
        // Sizes at B=2: dense 2·3·4 = 24, ids of each table 2·1·8 + 3·4 = 28, bottom.0 32,
        // each pooled table 32, interaction 2·7·4 = 56, top.0 16, top.1 8.
        // step 0 bottom.0:    dense + ids1 + ids2 + bottom.0           = 24+28+28+32 = 112
        // step 1 emb.C1:      ids1 + ids2 + bottom.0 + emb.C1          = 28+28+32+32 = 120
        // step 2 emb.C2:      ids2 + bottom.0 + emb.C1 + emb.C2        = 28+32+32+32 = 124
        // step 3 interaction: bottom.0 + emb.C1 + emb.C2 + interaction = 96+56       = 152 (peak)
        // step 4 top.0: 56 + 16 = 72; step 5 top.1: 16 + 8 = 24
        Assert.Equal(152, DlrmAccounting.MaxLiveActivationBytes(TinySpec(), 2));
    }

    [Fact]
    public void Live_activations_free_a_tensor_after_its_last_reader()
    {
        // a(10) -> s0 -> b(100) -> s1 -> c(1); s2 reads a and c -> d(1000).
        // a stays live until s2: s0 = 10+100, s1 = 10+100+1, s2 = 10+1+1000 = 1011 (peak).
        GraphStep[] steps = [new("s0", ["a"], ["b"]), new("s1", ["b"], ["c"]), new("s2", ["a", "c"], ["d"])];
        var sizes = new Dictionary<string, long> { ["a"] = 10, ["b"] = 100, ["c"] = 1, ["d"] = 1000 };
        Assert.Equal(1011, LiveActivations.Peak(steps, sizes));
        var missing = new Dictionary<string, long>(sizes);
        missing.Remove("c");
        ArgumentException e = Assert.Throws<ArgumentException>(() => LiveActivations.Peak(steps, missing));
        Assert.Contains("'c'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_shapes_are_refused_with_the_argument_named()
    {
        Assert.Equal("batch", Assert.Throws<ArgumentOutOfRangeException>(() => OperatorAccounting.Linear("fc", 0, 3, 2)).ParamName);
        Assert.Equal("lookups", Assert.Throws<ArgumentOutOfRangeException>(() => OperatorAccounting.EmbeddingBag("e", 1, Table("T", 10, 4), -1)).ParamName);
    }
}
