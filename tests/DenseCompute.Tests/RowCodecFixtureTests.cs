using System.Runtime.InteropServices;
using System.Text.Json;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.DenseCompute.Tests;

/// <summary>
/// Golden files from PyTorch 1.13 (tools/make_rowformat_fixtures.py): our Int8/Int4 encodings must equal
/// torch's embedding_bag_byte_prepack / embedding_bag_4bit_prepack bytes exactly, and our pooled outputs
/// must match torch's embedding_bag (fp32, fp16) and quantized rowwise_offsets ops within rounding.
/// </summary>
public class RowCodecFixtureTests
{
    public static TheoryData<int> Dims => new() { 1, 2, 3, 7, 8, 16, 17, 64, 65 };

    [Theory]
    [MemberData(nameof(Dims))]
    public void Int8_encoding_equals_torch_prepacked_bytes(int dim)
    {
        var f = RowFixture.Load(dim);
        AssertEncodingEquals(f, RowFormat.Int8, f.Int8Prepacked);
    }

    [Theory]
    [MemberData(nameof(Dims))]
    public void Int4_encoding_equals_torch_prepacked_bytes(int dim)
    {
        var f = RowFixture.Load(dim);
        AssertEncodingEquals(f, RowFormat.Int4, f.Int4Prepacked);
    }

    [Theory]
    [MemberData(nameof(Dims))]
    public void Pooled_outputs_match_torch_for_every_format_and_mode(int dim)
    {
        var f = RowFixture.Load(dim);
        using var fp32 = EmbeddingTable.FromFloats(f.Weights, f.Rows, dim, RowFormat.Fp32);
        using var fp16 = EmbeddingTable.FromFloats(f.Weights, f.Rows, dim, RowFormat.Fp16);
        // The quantized tables hold torch's bytes, so the kernel is checked apart from our encoder.
        using var int8 = FromBytes(f.Int8Prepacked, f.Rows, dim, RowFormat.Int8);
        using var int4 = FromBytes(f.Int4Prepacked, f.Rows, dim, RowFormat.Int4);
        foreach (var (name, table) in new[] { ("fp32", fp32), ("fp16", fp16), ("int8", int8), ("int4", int4) })
        {
            foreach (string mode in new[] { "sum_w", "sum", "mean" })
            {
                float[] expected = f.Output(name, mode);
                float[] actual = new float[f.Bags * dim];
                ReadOnlySpan<float> weights = mode == "sum_w" ? f.PerSampleWeights : default;
                EmbeddingBag.Pool(table, f.Indices, f.Offsets, weights, mode == "mean" ? Pooling.Mean : Pooling.Sum, actual);
                float[] magnitude = Magnitude(table, f, weights, mode == "mean");
                for (int i = 0; i < actual.Length; i++)
                {
                    // Summation order differs from torch's (we add the per-row biases once per bag), so the
                    // bound scales with the size of the terms summed: sum_j |w_j| (|scale_j q_j| + |bias_j|).
                    float tol = 1e-5f * magnitude[i] + 1e-6f;
                    Assert.True(Math.Abs(actual[i] - expected[i]) <= tol,
                        $"{name} {mode} D={dim} bag {i / dim} col {i % dim}: ours {actual[i]} torch {expected[i]} (tol {tol})");
                }
            }
        }
    }

    private static void AssertEncodingEquals(RowFixture f, RowFormat format, byte[] torchBytes)
    {
        int rowBytes = RowLayout.RowBytes(format, f.Dim);
        Assert.Equal(f.Rows * rowBytes, torchBytes.Length);
        byte[] ours = new byte[rowBytes];
        for (int r = 0; r < f.Rows; r++)
        {
            RowCodec.Encode(f.Weights.AsSpan(r * f.Dim, f.Dim), format, ours);
            byte[] theirs = torchBytes.AsSpan(r * rowBytes, rowBytes).ToArray();
            Assert.True(ours.AsSpan().SequenceEqual(theirs),
                $"{format} D={f.Dim} row {r}: ours {Convert.ToHexString(ours)} torch {Convert.ToHexString(theirs)}");
        }
    }

    private static EmbeddingTable FromBytes(byte[] bytes, int rows, int dim, RowFormat format)
    {
        var table = new EmbeddingTable(rows, dim, format);
        for (int r = 0; r < rows; r++) bytes.AsSpan(r * table.RowBytes, table.RowBytes).CopyTo(table.Row(r));
        return table;
    }

    private static float[] Magnitude(EmbeddingTable table, RowFixture f, ReadOnlySpan<float> weights, bool mean)
    {
        float[] m = new float[f.Bags * f.Dim];
        for (int b = 0; b < f.Bags; b++)
        {
            int start = f.Offsets[b], end = f.Offsets[b + 1];
            for (int j = start; j < end; j++)
            {
                float w = weights.IsEmpty ? 1f : weights[j];
                for (int c = 0; c < f.Dim; c++)
                {
                    m[b * f.Dim + c] += (float)(Math.Abs(w) * RowTerms.Magnitude(table.Row(f.Indices[j]), table.Format, f.Dim, c)) / (mean ? end - start : 1);
                }
            }
        }
        return m;
    }
}

/// <summary>One tests/fixtures/rowformats/rows_d{D}.json case; arrays are base64 little-endian.</summary>
internal sealed class RowFixture
{
    private readonly JsonElement _root;

    private RowFixture(JsonElement root)
    {
        _root = root;
        Dim = root.GetProperty("dim").GetInt32();
        Rows = root.GetProperty("rows").GetInt32();
        Bags = root.GetProperty("bags").GetInt32();
        Weights = Floats("weights_f32");
        Int8Prepacked = Bytes("int8_prepacked");
        Int4Prepacked = Bytes("int4_prepacked");
        Indices = MemoryMarshal.Cast<byte, long>(Bytes("indices")).ToArray();
        Offsets = MemoryMarshal.Cast<byte, int>(Bytes("offsets")).ToArray();
        PerSampleWeights = Floats("per_sample_weights");
    }

    public int Dim { get; }
    public int Rows { get; }
    public int Bags { get; }
    public float[] Weights { get; }
    public byte[] Int8Prepacked { get; }
    public byte[] Int4Prepacked { get; }
    public long[] Indices { get; }
    public int[] Offsets { get; }
    public float[] PerSampleWeights { get; }

    public float[] Output(string format, string mode) => Floats($"out_{format}_{mode}");

    public static RowFixture Load(int dim)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "fixtures", "rowformats", $"rows_d{dim}.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return new RowFixture(doc.RootElement.Clone());
    }

    private byte[] Bytes(string name) => Convert.FromBase64String(_root.GetProperty(name).GetString()!);

    private float[] Floats(string name) => MemoryMarshal.Cast<byte, float>(Bytes(name)).ToArray();
}
