using Recsys.DenseCompute.Gemm;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Tests;

/// <summary>
/// fp16 and int8 layers on 2 threads equal the same layer on 1 thread bit for bit: rows or panels are
/// split as the fp32 GEMM splits them, and every part computes its outputs exactly as the whole call does
/// (int8 activations are quantized once over the whole batch). Outputs start as NaN, so a part that is
/// never run or a split that leaves a gap shows up.
/// </summary>
public class QuantizedThreadingTests
{
    // Short batches split panels, tall ones (>= 256 rows on 2 threads) split rows; 17 and 300 leave ragged ends.
    private static readonly (int M, int K, int N)[] Shapes =
    [
        (16, 512, 256), (17, 367, 512), (64, 512, 256), (255, 256, 64), (256, 512, 256), (300, 100, 33), (513, 256, 1), (600, 64, 96),
    ];

    public static TheoryData<int> Int8Paths()
    {
        var data = new TheoryData<int>();
        foreach (Int8Path p in Enum.GetValues<Int8Path>())
        {
            if (PackedLinearInt8.IsSupported(p)) data.Add((int)p);
        }

        return data;
    }

    public static TheoryData<int> GemmPathIds()
    {
        var data = new TheoryData<int>();
        foreach (GemmPath p in Enum.GetValues<GemmPath>())
        {
            if (GemmPaths.IsSupported(p)) data.Add((int)p);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Int8Paths))]
    public void Int8_on_two_threads_equals_one_thread(int pathId)
    {
        var path = (Int8Path)pathId;
        foreach ((int m, int k, int n) in Shapes)
        {
            float[] x = GemmReference.Random(m * k, m + k);
            float[] w = GemmReference.Random(n * k, n + k);
            float[] b = GemmReference.Random(n, n);
            Int8Kernel kernel = path == Int8Path.Madd16 ? Int8Kernel.Madd16 : Int8Kernel.Vnni;
            var layer = PackedLinearInt8.Pack(w, b, n, k, Activation.Relu, new Int8Options { Kernel = kernel, OutlierDensity = kernel == Int8Kernel.Madd16 ? 0.01 : 0 });
            float[] one = Run((y, t) => layer.Forward(x, m, y, path, t), m * n, 1);
            float[] two = Run((y, t) => layer.Forward(x, m, y, path, t), m * n, 2);
            AssertSameBits(one, two, $"{path} m={m} k={k} n={n}");
        }
    }

    [Theory]
    [MemberData(nameof(GemmPathIds))]
    public void Fp16_on_two_threads_equals_one_thread(int pathId)
    {
        var path = (GemmPath)pathId;
        foreach ((int m, int k, int n) in Shapes)
        {
            float[] x = GemmReference.Random(m * k, m + k + 1);
            float[] w = GemmReference.Random(n * k, n + k + 1);
            float[] b = GemmReference.Random(n, n + 1);
            foreach (Activation act in Enum.GetValues<Activation>())
            {
                var layer = PackedLinearF16.Pack(w, b, n, k, act);
                float[] one = Run((y, t) => layer.Forward(x, m, y, path, t), m * n, 1);
                float[] two = Run((y, t) => layer.Forward(x, m, y, path, t), m * n, 2);
                AssertSameBits(one, two, $"{path} {act} m={m} k={k} n={n}");
            }
        }
    }

    [Fact]
    public void Threads_follow_the_fp32_gemm_policy()
    {
        Assert.Equal(1, QuantizedWorkers.Threads(2, 1, 64, 64)); // below the parallel threshold
        Assert.Equal(Math.Min(2, Environment.ProcessorCount), QuantizedWorkers.Threads(2, 256, 512, 256));
        Assert.Throws<ArgumentOutOfRangeException>(() => QuantizedWorkers.Threads(0, 256, 512, 256));
        // 512 rows on 2 threads: one row part of 256 rows per thread, each covering every panel.
        GemmProblem shape = QuantizedWorkers.Shape(512, 256, 256);
        Assert.Equal(2, shape.ChunkCount(2));
        shape.Partition(2, 1, out int m0, out int m1, out int p0, out int p1);
        Assert.Equal((256, 512, 0, 8), (m0, m1, p0, p1));
    }

    private static float[] Run(Action<float[], int> forward, int length, int threads)
    {
        var y = new float[length];
        Array.Fill(y, float.NaN);
        forward(y, threads);
        return y;
    }

    private static void AssertSameBits(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
            {
                Assert.Fail($"{what}: output {i} is {actual[i]} on 2 threads, {expected[i]} on 1");
            }
        }

        Assert.DoesNotContain(expected, float.IsNaN);
    }
}
