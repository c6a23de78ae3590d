using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

/// <summary>DlrmModel against the PyTorch reference DLRM (tools/make_dlrm_fixtures.py).</summary>
public class DlrmModelTests
{
    public static TheoryData<string> Configs() => [.. DlrmFixture.Configs];

    /// <summary>Configs whose tables all have even dims, which the 4-bit FBGEMM prepack requires.</summary>
    public static TheoryData<string> Int4Configs() => [.. DlrmFixture.Configs.Where(c => DlrmFixture.Open(c).Expected.ContainsKey("int4"))];

    [Theory]
    [MemberData(nameof(Configs))]
    public void Fp32_scores_match_pytorch_to_1e5_relative(string config)
    {
        DlrmFixture f = DlrmFixture.Open(config);
        using DlrmModel model = DlrmModel.Load(f.Directory);
        AssertClose(f.Expected["fp32"], model.Score(f.Batch()), relative: 1e-5, $"{config} fp32");
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void Fp16_rows_match_pytorch_with_rows_rounded_to_half(string config)
    {
        DlrmFixture f = DlrmFixture.Open(config);
        using DlrmModel model = DlrmModel.Load(f.WithStorage(RowFormat.Fp16), Path.Combine(f.Directory, "weights.safetensors"));
        // fp16 rows dequantize exactly, so this is as tight as fp32.
        AssertClose(f.Expected["fp16"], model.Score(f.Batch()), relative: 1e-5, $"{config} fp16");
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void Int8_prepacked_by_fbgemm_match_torch_quantized_embedding_bag(string config)
    {
        DlrmFixture f = DlrmFixture.Open(config);
        using DlrmModel model = DlrmModel.Load(f.WithStorage(RowFormat.Int8), Path.Combine(f.Directory, "weights-int8.safetensors"));
        AssertClose(f.Expected["int8"], model.Score(f.Batch()), relative: 1e-5, $"{config} int8 prepacked");
    }

    [Theory]
    [MemberData(nameof(Int4Configs))]
    public void Int4_prepacked_by_fbgemm_match_torch_quantized_embedding_bag(string config)
    {
        DlrmFixture f = DlrmFixture.Open(config);
        using DlrmModel model = DlrmModel.Load(f.WithStorage(RowFormat.Int4), Path.Combine(f.Directory, "weights-int4.safetensors"));
        AssertClose(f.Expected["int4"], model.Score(f.Batch()), relative: 1e-5, $"{config} int4 prepacked");
    }

    /// <summary>
    /// Our own row quantizer (RowCodec) against FBGEMM's prepack: int8 codes come out identical,
    /// so the scores agree as tightly as fp32.
    /// </summary>
    [Theory]
    [MemberData(nameof(Configs))]
    public void Int8_quantized_at_load_matches_fbgemm_to_1e5_relative(string config)
    {
        DlrmFixture f = DlrmFixture.Open(config);
        using DlrmModel model = DlrmModel.Load(f.WithStorage(RowFormat.Int8), Path.Combine(f.Directory, "weights.safetensors"));
        AssertClose(f.Expected["int8"], model.Score(f.Batch()), relative: 1e-5, $"{config} int8 from fp32");
    }

    /// <summary>
    /// FBGEMM's 4-bit prepack rounds the row minimum to fp16 before it takes the range, RowCodec
    /// after; some codes move by one step, so the scores agree to 1e-3 absolute (2.6e-4 seen
    /// on these fixtures), not exactly.
    /// </summary>
    [Theory]
    [MemberData(nameof(Int4Configs))]
    public void Int4_quantized_at_load_is_within_1e3_of_fbgemm(string config)
    {
        DlrmFixture f = DlrmFixture.Open(config);
        using DlrmModel model = DlrmModel.Load(f.WithStorage(RowFormat.Int4), Path.Combine(f.Directory, "weights.safetensors"));
        AssertWithin(f.Expected["int4"], model.Score(f.Batch()), absolute: 1e-3, $"{config} int4 from fp32");
    }

    [Fact]
    public void Quantized_references_differ_from_fp32_so_the_quantized_tests_can_fail()
    {
        DlrmFixture f = DlrmFixture.Open("dot");
        float maxInt8 = f.Expected["fp32"].Zip(f.Expected["int8"]).Max(p => Math.Abs(p.First - p.Second));
        float maxInt4 = f.Expected["fp32"].Zip(f.Expected["int4"]).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(maxInt8 > 1e-5, $"int8 differs from fp32 by only {maxInt8}");
        Assert.True(maxInt4 > 1e-4, $"int4 differs from fp32 by only {maxInt4}");
    }

    [Fact]
    public void Multi_event_model_scores_batch_x_events()
    {
        DlrmFixture f = DlrmFixture.Open("multi-event");
        using DlrmModel model = DlrmModel.Load(f.Directory);
        RankBatch batch = f.Batch();
        Assert.Equal(3, model.Spec.Events);
        Assert.Equal(batch.Batch * 3, model.Score(batch).Length);
    }

    [Fact]
    public void Scoring_samples_one_at_a_time_equals_scoring_the_batch()
    {
        DlrmFixture f = DlrmFixture.Open("weighted");
        using DlrmModel model = DlrmModel.Load(f.Directory);
        RankBatch batch = f.Batch();
        float[] whole = model.Score(batch);
        int events = model.Spec.Events;
        for (int b = 0; b < batch.Batch; b++)
        {
            float[] one = model.Score(Slice(batch, b));
            for (int e = 0; e < events; e++) Assert.Equal(whole[b * events + e], one[e], 6);
        }
    }

    [Fact]
    public void Weights_tensor_with_the_wrong_table_shape_is_reported_by_tensor_name()
    {
        DlrmFixture f = DlrmFixture.Open("dot");
        DlrmSpec spec = f.Spec with { Tables = [f.Spec.Tables[0] with { Rows = 21 }, .. f.Spec.Tables[1..]] };
        var e = Assert.Throws<ModelFileException>(() => DlrmModel.Load(spec, Path.Combine(f.Directory, "weights.safetensors")));
        Assert.Equal("tensor 'emb_l.0.weight'", e.Field);
        Assert.Contains("[20, 4]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[21, 4]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mlp_weights_not_matching_model_json_are_reported_by_tensor_name()
    {
        DlrmFixture f = DlrmFixture.Open("dot");
        DlrmSpec spec = f.Spec with { BottomMlp = [9, 4] };
        var e = Assert.Throws<ModelFileException>(() => DlrmModel.Load(spec, Path.Combine(f.Directory, "weights.safetensors")));
        Assert.Equal("tensor 'bot_l.0.weight'", e.Field);
        Assert.EndsWith("weights.safetensors", e.File, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_table_tensor_is_reported_by_name()
    {
        DlrmFixture f = DlrmFixture.Open("dot");
        TableSpec extra = f.Spec.Tables[0] with { Name = "C4" };
        DlrmSpec spec = f.Spec with { Tables = [.. f.Spec.Tables, extra] };
        // A fourth table changes the top MLP input, so build a file that has the MLPs right but no emb_l.3.
        string dir = Temp.Directory();
        string path = Path.Combine(dir, "w.safetensors");
        using (SafeTensorsFile source = SafeTensorsFile.Open(Path.Combine(f.Directory, "weights.safetensors")))
        {
            var tensors = source.Tensors.Values.OrderBy(t => t.Offset).Select(t => (t.Name, t.Shape)).ToList();
            int topIn = spec.InteractionOutput;
            tensors = [.. tensors.Select(t => t.Name == "top_l.0.weight" ? (t.Name, new long[] { t.Shape[0], topIn }) : t)];
            using var writer = new SafeTensorsWriter(path, tensors);
            foreach (var (name, shape) in tensors) writer.Write(new float[shape.Aggregate(1L, (a, b) => a * b)]);
        }
        var e = Assert.Throws<ModelFileException>(() => DlrmModel.Load(spec, path));
        Assert.Equal("tensor 'emb_l.3.weight'", e.Field);
        Assert.Contains("missing", e.Message, StringComparison.Ordinal);
    }

    internal static RankBatch Slice(RankBatch batch, int b)
    {
        int d = batch.Dense.Length / batch.Batch;
        var sparse = batch.Sparse.Select(s =>
        {
            int start = s.Offsets[b], end = s.Offsets[b + 1];
            return new SparseFeature(s.Ids[start..end], [0, end - start], s.Weights?[start..end]);
        }).ToArray();
        return new RankBatch(1, batch.Dense[(b * d)..((b + 1) * d)], sparse);
    }

    internal static void AssertClose(float[] expected, float[] actual, double relative, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(expected[i] - actual[i]);
            Assert.True(err <= relative * Math.Abs(expected[i]) + 1e-7, $"{what}: score {i} is {actual[i]}, PyTorch {expected[i]} (|diff| {err:E2})");
        }
    }

    internal static void AssertWithin(float[] expected, float[] actual, double absolute, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(expected[i] - actual[i]);
            Assert.True(err <= absolute, $"{what}: score {i} is {actual[i]}, FBGEMM {expected[i]} (|diff| {err:E2})");
        }
    }
}

internal static class Temp
{
    public static string Directory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "recsys-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        return dir;
    }
}
