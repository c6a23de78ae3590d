using System.Buffers;
using System.Text;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

public class RankRequestJsonTests
{
    private static readonly DlrmSpec Spec = new(2, [4], [1], InteractionKind.Dot, false,
        [new TableSpec("A", 10, 4, Pooling.Sum, RowFormat.Fp32, 1), new TableSpec("B", 5, 4, Pooling.Mean, RowFormat.Fp32, 1)], "w");

    private static RankBatch Parse(string json, int maxBatch = 8) => new RankRequestJson(Spec, maxBatch).Parse(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void A_valid_body_becomes_csr_bags_in_table_order()
    {
        RankBatch batch = new RankRequestJson(Spec).Parse(
            """{"sparse": {"B": [[4], [], [0, 1]], "A": [[1, 2], [9], []]}, "weights": {"A": [[0.5, 2], [-1], []]}, "dense": [[0.1, 2], [3, 4e-3], [-5, 6]], "version": "7"}"""u8,
            out string? version);
        Assert.Equal("7", version);
        Assert.Equal(3, batch.Batch);
        Assert.Equal([0.1f, 2f, 3f, 4e-3f, -5f, 6f], batch.Dense);
        Assert.Equal([1L, 2, 9], batch.Sparse[0].Ids);
        Assert.Equal([0, 2, 3, 3], batch.Sparse[0].Offsets);
        Assert.Equal([0.5f, 2f, -1f], batch.Sparse[0].Weights!);
        Assert.Equal([4L, 0, 1], batch.Sparse[1].Ids);
        Assert.Equal([0, 1, 1, 3], batch.Sparse[1].Offsets);
        Assert.Null(batch.Sparse[1].Weights);
    }

    [Theory]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1]]}, "version": 12}""", "12")]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1]]}}""", null)]
    public void Version_is_read_alone_and_with_the_body(string json, string? expected)
    {
        Assert.Equal(expected, RankRequestJson.ReadVersion(Encoding.UTF8.GetBytes(json)));
        new RankRequestJson(Spec).Parse(Encoding.UTF8.GetBytes(json), out string? version);
        Assert.Equal(expected, version);
    }

    [Theory]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1]]""", "body", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1]]}} {}""", "body", 400)]
    [InlineData("""{"dense": [[1, 2],], "sparse": {"A": [[1]], "B": [[1]]}}""", "body", 400)]
    [InlineData("""[]""", "body", 400)]
    [InlineData("", "body", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1]]}, "spares": {}}""", "spares", 400)]
    [InlineData("""{"dense": [[1, 2]], "dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1]]}}""", "dense", 400)]
    [InlineData("""{"dense": [[1, 2], [3, 4]], "sparse": {"A": [[1]], "B": [[1]]}}""", "sparse.A", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1], [2]]}}""", "sparse.B", 400)]
    [InlineData("""{"dense": [[1, 2, 3]], "sparse": {"A": [[1]], "B": [[1]]}}""", "dense[0]", 400)]
    [InlineData("""{"dense": [[1, 2], [1]], "sparse": {"A": [[1], [1]], "B": [[1], [1]]}}""", "dense[1]", 400)]
    [InlineData("""{"dense": [1, 2], "sparse": {"A": [[1]], "B": [[1]]}}""", "dense[0]", 400)]
    [InlineData("""{"dense": [[1, 1e39]], "sparse": {"A": [[1]], "B": [[1]]}}""", "dense[0][1]", 400)]
    [InlineData("""{"dense": [[1, 1e999]], "sparse": {"A": [[1]], "B": [[1]]}}""", "dense[0][1]", 400)]
    [InlineData("""{"dense": [[1, "NaN"]], "sparse": {"A": [[1]], "B": [[1]]}}""", "dense[0][1]", 400)]
    [InlineData("""{"dense": [[1, null]], "sparse": {"A": [[1]], "B": [[1]]}}""", "dense[0][1]", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1]], "C": [[1]]}}""", "sparse.C", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]]}}""", "sparse.B", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "A": [[1]], "B": [[1]]}}""", "sparse.A", 400)]
    [InlineData("""{"dense": [[1, 2]]}""", "sparse", 400)]
    [InlineData("""{"sparse": {"A": [[1]], "B": [[1]]}}""", "dense", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1.5]], "B": [[1]]}}""", "sparse.A[0][0]", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [["3"]], "B": [[1]]}}""", "sparse.A[0][0]", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1, 99999999999999999999]], "B": [[1]]}}""", "sparse.A[0][1]", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1, -1]]}}""", "sparse.B[0][1]", 422)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[10]], "B": [[1]]}}""", "sparse.A[0][0]", 422)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [1], "B": [[1]]}}""", "sparse.A[0]", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": {"0": [1]}, "B": [[1]]}}""", "sparse.A", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": [[1]]}""", "sparse", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1, 2]], "B": [[1]]}, "weights": {"A": [[1]]}}""", "weights.A[0]", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1, 2]], "B": [[1]]}, "weights": {"A": [[1, 1], [1]]}}""", "weights.A", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1, 2]], "B": [[1]]}, "weights": {"A": [[1, 1e50]]}}""", "weights.A[0][1]", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1, 2]], "B": [[1]]}, "weights": {"B": [[1]]}}""", "weights.B", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1, 2]], "B": [[1]]}, "weights": {"Z": [[1]]}}""", "weights.Z", 400)]
    [InlineData("""{"dense": [], "sparse": {"A": [], "B": []}}""", "dense", 400)]
    [InlineData("""{"dense": [[1, 2]], "sparse": {"A": [[1]], "B": [[1]]}, "version": [1]}""", "version", 400)]
    public void Bad_bodies_name_the_field(string json, string field, int status)
    {
        var e = Assert.Throws<InvalidRequestException>(() => Parse(json));
        Assert.Equal(field, e.Field);
        Assert.Equal(status, e.Status);
        Assert.StartsWith(field + ": ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_batch_over_the_limit_is_413_naming_where_it_was_noticed()
    {
        static string Body(int n) =>
            "{\"dense\": [" + string.Join(", ", Enumerable.Repeat("[1, 2]", n)) + "], \"sparse\": {\"A\": ["
            + string.Join(", ", Enumerable.Repeat("[]", n)) + "], \"B\": [" + string.Join(", ", Enumerable.Repeat("[]", n)) + "]}}";
        var e = Assert.Throws<InvalidRequestException>(() => Parse(Body(9), maxBatch: 8));
        Assert.Equal(413, e.Status);
        Assert.Equal("dense", e.Field);
        Assert.Equal(8, Parse(Body(8), maxBatch: 8).Batch);
    }

    [Fact]
    public void A_model_without_dense_features_takes_its_batch_from_the_bags()
    {
        var spec = Spec with { DenseFeatures = 0, BottomMlp = [], Interaction = InteractionKind.Cat };
        RankBatch batch = new RankRequestJson(spec).Parse("""{"sparse": {"A": [[1], [2]], "B": [[], [3]]}}"""u8);
        Assert.Equal(2, batch.Batch);
        Assert.Empty(batch.Dense);
    }

    [Fact]
    public void Fixture_requests_parse_to_the_batch_pytorch_scored()
    {
        DlrmFixture f = DlrmFixture.Open("weighted");
        RankBatch batch = f.Batch();
        Assert.Equal(f.Expected["fp32"].Length / f.Spec.Events, batch.Batch);
        Assert.NotNull(batch.Sparse[0].Weights);
        Assert.Null(batch.Sparse[1].Weights);
        // Sample 2 has an empty bag in every table (the fixture script's rule).
        Assert.All(batch.Sparse, s => Assert.Equal(s.Offsets[2], s.Offsets[3]));
    }
}

public class RankRequestJsonSequenceTests
{
    [Fact]
    public void A_body_split_into_segments_parses_like_one_buffer()
    {
        DlrmFixture f = DlrmFixture.Open("weighted");
        byte[] trimmed = f.Request.AsSpan().TrimEnd("\n "u8).ToArray();
        byte[] body = [.. trimmed[..^1], .. ", \"version\": \"4\"}"u8];
        RankBatch whole = new RankRequestJson(f.Spec).Parse(body, out _);
        // 7-byte segments split numbers, ids and property names across segment ends.
        ReadOnlySequence<byte> split = Segment.Split(body, 7);
        RankBatch pieces = new RankRequestJson(f.Spec).Parse(split, out string? version);
        Assert.Equal("4", version);
        Assert.Equal("4", RankRequestJson.ReadVersion(split));
        Assert.Equal(whole.Dense, pieces.Dense);
        for (int t = 0; t < whole.Sparse.Length; t++)
        {
            Assert.Equal(whole.Sparse[t].Ids, pieces.Sparse[t].Ids);
            Assert.Equal(whole.Sparse[t].Offsets, pieces.Sparse[t].Offsets);
            Assert.Equal(whole.Sparse[t].Weights, pieces.Sparse[t].Weights);
        }
    }

    [Fact]
    public void A_non_finite_number_split_across_segments_is_named()
    {
        DlrmSpec spec = DlrmFixture.Open("dot").Spec;
        byte[] body = """{"dense": [[1, 2, 3, 4, 1e999]], "sparse": {"C1": [[1]], "C2": [[1]], "C3": [[1]]}}"""u8.ToArray();
        var e = Assert.Throws<InvalidRequestException>(() => new RankRequestJson(spec).Parse(Segment.Split(body, 3), out _));
        Assert.Equal("dense[0][4]", e.Field);
        Assert.Contains("1e999", e.Message, StringComparison.Ordinal);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        private Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public static ReadOnlySequence<byte> Split(byte[] data, int size)
        {
            var first = new Segment(data.AsMemory(0, Math.Min(size, data.Length)), 0);
            Segment last = first;
            for (int at = size; at < data.Length; at += size)
            {
                var next = new Segment(data.AsMemory(at, Math.Min(size, data.Length - at)), at);
                last.Next = next;
                last = next;
            }
            return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        }
    }
}
