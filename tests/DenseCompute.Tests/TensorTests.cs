using Recsys.DenseCompute.Gemm;
using Recsys.DenseCompute.Tensors;

namespace Recsys.DenseCompute.Tests;

public class TensorTests
{
    [Fact]
    public void Rows_are_consecutive_slices_of_the_row_major_span()
    {
        var pool = new TensorPool();
        using Tensor t = pool.Rent(3, 5);
        Assert.Equal((3, 5), t.Shape);
        Assert.Equal(15, t.Length);
        for (int r = 0; r < 3; r++)
        {
            for (int c = 0; c < 5; c++) t.Row(r)[c] = (r * 10) + c;
        }

        float[] expected = [0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24];
        Assert.Equal(expected, t.Span.ToArray());
    }

    [Fact]
    public unsafe void Buffers_are_64_byte_aligned()
    {
        var pool = new TensorPool();
        foreach ((int r, int c) in new[] { (1, 1), (7, 13), (64, 1024), (1, 3) })
        {
            using Tensor t = pool.Rent(r, c);
            fixed (float* p = t.Span) Assert.Equal(0, (long)p % 64);
        }
    }

    [Fact]
    public void A_returned_tensor_is_reused_and_steady_state_rent_allocates_nothing()
    {
        var pool = new TensorPool();
        Tensor first = pool.Rent(64, 512);
        first.Dispose();
        using (Tensor again = pool.Rent(100, 300)) Assert.Same(first, again); // 30000 floats fits the same 32768 bucket

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            using Tensor t = pool.Rent(64, 512);
            t.Row(63)[511] = i;
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Two_live_tensors_never_share_a_buffer()
    {
        var pool = new TensorPool();
        using Tensor a = pool.Rent(8, 8);
        using Tensor b = pool.Rent(8, 8);
        a.Span.Fill(1f);
        b.Span.Fill(2f);
        Assert.All(a.Span.ToArray(), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void Reshape_reuses_the_buffer_within_capacity()
    {
        var pool = new TensorPool();
        using Tensor t = pool.Rent(16, 512);
        t.Reshape(32, 256);
        Assert.Equal((32, 256), t.Shape);
        Assert.Equal(256, t.Row(31).Length);
        Assert.Equal("rows", Assert.Throws<ArgumentException>(() => t.Reshape(t.Capacity + 1, 1)).ParamName);
    }

    [Fact]
    public void Misuse_is_reported()
    {
        var pool = new TensorPool();
        Assert.Equal("rows", Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(-1, 4)).ParamName);
        Assert.Equal("cols", Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(4, -1)).ParamName);
        Tensor t = pool.Rent(2, 3);
        Assert.Equal("row", Assert.Throws<ArgumentOutOfRangeException>(() => t.Row(2)).ParamName);
        t.Dispose();
        t.Dispose(); // a second Dispose must not put the tensor in the pool twice
        Assert.Throws<ObjectDisposedException>(() => t.Span.Length);
        using Tensor x = pool.Rent(2, 3);
        using Tensor y = pool.Rent(2, 3);
        Assert.NotSame(x, y);
    }

    [Fact]
    public void A_two_layer_forward_over_pooled_tensors_matches_the_reference()
    {
        const int m = 5, k = 20, h = 40, n = 7;
        float[] w1 = GemmReference.Random(h * k, 1), b1 = GemmReference.Random(h, 2);
        float[] w2 = GemmReference.Random(n * h, 3), b2 = GemmReference.Random(n, 4);
        var l1 = PackedLinear.Pack(w1, b1, h, k, Activation.None);
        var l2 = PackedLinear.Pack(w2, b2, n, h, Activation.Sigmoid);
        var pool = new TensorPool();
        using Tensor x = pool.Rent(m, k);
        GemmReference.Random(m * k, 5).CopyTo(x.Span);
        using Tensor hidden = pool.Rent(m, h);
        using Tensor y = pool.Rent(m, n);
        l1.Forward(x.Span, m, hidden.Span);
        l2.Forward(hidden.Span, m, y.Span);
        GemmReference.AssertMatches(hidden.Span.ToArray(), w2, b2, m, h, n, Activation.Sigmoid, y.Span, "pooled");
    }
}
