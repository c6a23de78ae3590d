using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Tests;

public class GemmTests
{
    private static readonly int[] OddM = [1, 2, 3, 5, 7, 13, 17, 33, 64, 100];
    private static readonly int[] OddN = [1, 3, 15, 16, 17, 31, 33, 65, 257];

    public static TheoryData<int> SupportedPaths()
    {
        var data = new TheoryData<int>();
        foreach (GemmPath path in Enum.GetValues<GemmPath>())
        {
            if (GemmPaths.IsSupported(path)) data.Add((int)path);
        }

        return data;
    }

    public static TheoryData<int, int> PathsAndActivations()
    {
        var data = new TheoryData<int, int>();
        foreach (GemmPath path in Enum.GetValues<GemmPath>())
        {
            if (!GemmPaths.IsSupported(path)) continue;
            foreach (Activation act in Enum.GetValues<Activation>()) data.Add((int)path, (int)act);
        }

        return data;
    }

    [Fact]
    public void This_machine_runs_the_widest_path_it_supports()
    {
        // The benchmarks and the AVX-512 tests below mean little if the detection silently fell back.
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            Assert.Equal(GemmPath.Avx512, GemmPaths.Best);
        else
            Assert.NotEqual(GemmPath.Avx512, GemmPaths.Best);
    }

    [Theory]
    [MemberData(nameof(SupportedPaths))]
    public void Every_K_from_0_to_257_matches_the_double_reference(int pathId)
    {
        var path = (GemmPath)pathId;
        foreach (int m in new[] { 1, 3, 17 })
        {
            foreach (int n in new[] { 5, 33, 64 })
            {
                for (int k = 0; k <= 257; k++)
                {
                    var act = (Activation)(k % 3);
                    Check(path, m, k, n, act, seed: (m * 1000) + (n * 300) + k);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndActivations))]
    public void Odd_shapes_match_the_double_reference(int pathId, int actId)
    {
        var path = (GemmPath)pathId;
        var act = (Activation)actId;
        foreach (int m in OddM)
        {
            foreach (int n in OddN)
            {
                // 37 fits one K block; 300 makes tall batches take two K blocks (256 + 44).
                Check(path, m, 37, n, act, seed: m + (n * 7));
                Check(path, m, 300, n, act, seed: m + (n * 11));
            }
        }
    }

    [Theory]
    [MemberData(nameof(SupportedPaths))]
    public void Every_batch_from_1_to_45_matches_the_double_reference(int pathId)
    {
        // Rows are dealt evenly to tiles, so this reaches every tile height of every kernel (1..14).
        for (int m = 1; m <= 45; m++)
        {
            Check((GemmPath)pathId, m, 70, 100, Activation.Relu, seed: m);
        }
    }

    [Theory]
    [MemberData(nameof(SupportedPaths))]
    public void Batches_taller_than_one_M_block_match_the_double_reference(int pathId)
    {
        // 300 rows exceeds the 18-tile M block of every path; K 520 gives three K blocks.
        Check((GemmPath)pathId, 300, 520, 65, Activation.Relu, seed: 5);
        Check((GemmPath)pathId, 257, 1, 96, Activation.None, seed: 6);
    }

    [Theory]
    [MemberData(nameof(SupportedPaths))]
    public void Two_threads_give_bit_identical_results_to_one(int pathId)
    {
        var path = (GemmPath)pathId;
        // Short batch with many panels splits output panels (A packed once, shared); tall batch splits rows;
        // 272 x 300 splits both ways (2 row parts x 2 panel parts); one output column splits rows even
        // though the batch is short.
        foreach ((int m, int k, int n) in new[] { (1, 479, 1024), (3, 300, 200), (16, 1024, 512), (64, 256, 256), (300, 200, 65), (272, 100, 300), (1024, 256, 1), (100, 2000, 1) })
        {
            foreach (Activation act in Enum.GetValues<Activation>())
            {
                float[] x = GemmReference.Random(m * k, 1);
                float[] w = GemmReference.Random(n * k, 2, 1f / MathF.Sqrt(k));
                float[] b = GemmReference.Random(n, 3);
                var layer = PackedLinear.Pack(w, b, n, k, act);
                var one = new float[m * n];
                var two = new float[m * n];
                layer.Forward(x, m, one, 1, path);
                layer.Forward(x, m, two, 2, path);
                Assert.True(one.AsSpan().SequenceEqual(two), $"{path} M={m} K={k} N={n} {act}: 2-thread output differs from 1-thread");
                GemmReference.AssertMatches(x, w, b, m, k, n, act, two, $"{path} 2 threads");
            }
        }
    }

    [Fact]
    public void Every_path_agrees_with_the_others_within_tolerance()
    {
        const int m = 33, k = 129, n = 65;
        float[] x = GemmReference.Random(m * k, 8);
        float[] w = GemmReference.Random(n * k, 9);
        float[] b = GemmReference.Random(n, 10);
        var layer = PackedLinear.Pack(w, b, n, k, Activation.None);
        var scalar = new float[m * n];
        layer.Forward(x, m, scalar, 1, GemmPath.Scalar);
        foreach (GemmPath path in Enum.GetValues<GemmPath>())
        {
            if (!GemmPaths.IsSupported(path)) continue;
            var y = new float[m * n];
            layer.Forward(x, m, y, 1, path);
            for (int i = 0; i < y.Length; i++) Assert.Equal(scalar[i], y[i], 1e-3f);
        }
    }

    [Fact]
    public void Partition_covers_every_row_and_panel_exactly_once()
    {
        foreach ((int m, int n) in new[] { (1, 1024), (16, 512), (31, 512), (200, 64), (1024, 1), (7, 33), (1, 1), (5, 64) })
        {
            foreach (int threads in new[] { 2, 3, 4, 8 })
            {
                var problem = NewProblem(m, n);
                var hits = new int[m, GemmLayout.PanelCount(n)];
                int chunks = problem.ChunkCount(threads);
                for (int i = 0; i < chunks; i++)
                {
                    problem.Partition(threads, i, out int m0, out int m1, out int p0, out int p1);
                    for (int r = m0; r < m1; r++)
                    {
                        for (int p = p0; p < p1; p++) hits[r, p]++;
                    }
                }

                foreach (int h in hits) Assert.Equal(1, h);
                // Enough chunks for every thread whenever there are rows or panels to share, never more than 4 each.
                Assert.InRange(chunks, Math.Min(threads, Math.Max(m, GemmLayout.PanelCount(n))), 4 * threads);
            }
        }
    }

    [Fact]
    public void Fine_panel_chunks_cover_every_panel_once_in_pairs()
    {
        foreach ((int m, int n) in new[] { (1, 1024), (16, 512), (64, 256), (31, 100), (1, 33), (200, 64), (1024, 512) })
        {
            foreach (int threads in new[] { 2, 3, 4 })
            {
                GemmProblem problem = NewProblem(m, n).WithPanelChunksPerThread(8);
                int panels = GemmLayout.PanelCount(n);
                var hits = new int[m, panels];
                int chunks = problem.ChunkCount(threads);
                for (int i = 0; i < chunks; i++)
                {
                    problem.Partition(threads, i, out int m0, out int m1, out int p0, out int p1);
                    // Pairs feed the two-panel kernel; only the last chunk may end on an odd panel count.
                    if (problem.SharesInput(threads) && (panels + 1) / 2 >= threads) Assert.True(p0 % 2 == 0 && (p1 % 2 == 0 || p1 == panels), $"M={m} N={n} {threads} threads: chunk {i} = panels [{p0}, {p1})");
                    for (int r = m0; r < m1; r++)
                    {
                        for (int p = p0; p < p1; p++) hits[r, p]++;
                    }
                }

                foreach (int h in hits) Assert.Equal(1, h);
                Assert.InRange(chunks, 1, 8 * threads);
                // Row splits are unaffected by the panel setting.
                if (!problem.SharesInput(threads)) Assert.Equal(NewProblem(m, n).ChunkCount(threads), chunks);
            }
        }
    }

    [Fact]
    public void Output_beyond_m_rows_is_left_untouched()
    {
        const int m = 3, k = 40, n = 17;
        float[] x = GemmReference.Random((m * k) + 5, 1);
        float[] w = GemmReference.Random(n * k, 2);
        float[] b = GemmReference.Random(n, 3);
        var layer = PackedLinear.Pack(w, b, n, k, Activation.None);
        var y = new float[(m * n) + 20];
        y.AsSpan(m * n).Fill(12345f);
        layer.Forward(x, m, y);
        Assert.All(y[(m * n)..], v => Assert.Equal(12345f, v));
        GemmReference.AssertMatches(x, w, b, m, k, n, Activation.None, y, "slack");
    }

    [Fact]
    public void Sigmoid_saturates_without_NaN_for_large_sums()
    {
        const int k = 4, n = 2;
        float[] x = [100f, 100f, 100f, 100f, -100f, -100f, -100f, -100f];
        float[] w = [1f, 1f, 1f, 1f, -1f, -1f, -1f, -1f];
        float[] b = [0f, 0f];
        var layer = PackedLinear.Pack(w, b, n, k, Activation.Sigmoid);
        var y = new float[4];
        layer.Forward(x, 2, y);
        Assert.Equal([1f, 0f, 0f, 1f], y);
    }

    [Theory]
    [MemberData(nameof(SupportedPaths))]
    public void Relu_keeps_a_NaN_sum_NaN_like_torch(int pathId)
    {
        const int k = 3, n = 40;
        float[] x = [1f, float.NaN, 1f];
        float[] w = GemmReference.Random(n * k, 4);
        var layer = PackedLinear.Pack(w, new float[n], n, k, Activation.Relu);
        var y = new float[n];
        layer.Forward(x, 1, y, 1, (GemmPath)pathId);
        Assert.All(y, v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public void Bad_shapes_are_rejected_with_the_argument_named()
    {
        float[] w = new float[6], b = new float[2];
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => PackedLinear.Pack(w.AsSpan(1), b, 2, 3, Activation.None)).ParamName);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => PackedLinear.Pack(w, b.AsSpan(1), 2, 3, Activation.None)).ParamName);
        Assert.Equal("outFeatures", Assert.Throws<ArgumentOutOfRangeException>(() => PackedLinear.Pack([], [], 0, 3, Activation.None)).ParamName);
        var layer = PackedLinear.Pack(w, b, 2, 3, Activation.None);
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => layer.Forward(new float[5], 2, new float[4])).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => layer.Forward(new float[6], 2, new float[3])).ParamName);
        Assert.Equal("m", Assert.Throws<ArgumentOutOfRangeException>(() => layer.Forward(new float[6], -1, new float[4])).ParamName);
        Assert.Equal("maxThreads", Assert.Throws<ArgumentOutOfRangeException>(() => layer.Forward(new float[6], 2, new float[4], 0)).ParamName);
    }

    private static unsafe GemmProblem NewProblem(int m, int n) => new(null, null, m, 1, n, null, null, Activation.None);

    private static void Check(GemmPath path, int m, int k, int n, Activation act, int seed)
    {
        float[] x = GemmReference.Random(m * k, seed);
        float[] w = GemmReference.Random(n * k, seed + 1);
        float[] b = GemmReference.Random(n, seed + 2);
        var layer = PackedLinear.Pack(w, b, n, k, act);
        var y = new float[m * n];
        layer.Forward(x, m, y, 1, path);
        GemmReference.AssertMatches(x, w, b, m, k, n, act, y, path.ToString());
    }
}
