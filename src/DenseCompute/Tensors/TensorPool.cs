namespace Recsys.DenseCompute.Tensors;

/// <summary>
/// Hands out <see cref="Tensor"/> workspaces from power-of-two capacity buckets. Buffers are
/// pinned (kernels hold raw pointers into them) and never freed: the pool settles at the
/// working set of the largest batch seen, which is what a serving process wants.
/// Thread-safe; one lock per bucket.
/// </summary>
public sealed class TensorPool
{
    private const int MinBucketShift = 4; // 16 floats
    private const int BucketCount = 28;   // up to 2^31 floats
    private readonly Stack<Tensor>[] _buckets;

    public TensorPool()
    {
        _buckets = new Stack<Tensor>[BucketCount];
        for (int i = 0; i < BucketCount; i++) _buckets[i] = new Stack<Tensor>();
    }

    /// <summary>A pool for callers that do not manage their own.</summary>
    public static TensorPool Shared { get; } = new();

    /// <summary>A rows x cols tensor with unspecified contents; Dispose returns it.</summary>
    public Tensor Rent(int rows, int cols)
    {
        CheckShape(rows, cols);
        long length = (long)rows * cols;
        if (length > Array.MaxLength - 16) throw new ArgumentException($"shape {rows} x {cols} is too large for one tensor", nameof(rows));
        int bucket = Bucket(length);
        Stack<Tensor> stack = _buckets[bucket];
        Tensor? tensor = null;
        lock (stack)
        {
            stack.TryPop(out tensor);
        }

        if (tensor is null)
        {
            int capacity = (int)Math.Min(1L << (bucket + MinBucketShift), Array.MaxLength - 16);
            tensor = new Tensor(this, GC.AllocateUninitializedArray<float>(capacity + 16, pinned: true), capacity);
        }

        tensor.OnRent(rows, cols);
        return tensor;
    }

    internal void Return(Tensor tensor)
    {
        Stack<Tensor> stack = _buckets[Bucket(tensor.Capacity)];
        lock (stack)
        {
            stack.Push(tensor);
        }
    }

    internal static void CheckShape(int rows, int cols)
    {
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows cannot be negative");
        if (cols < 0) throw new ArgumentOutOfRangeException(nameof(cols), cols, "cols cannot be negative");
    }

    private static int Bucket(long length)
    {
        int shift = length <= 1L << MinBucketShift ? MinBucketShift : 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(length - 1));
        return shift - MinBucketShift;
    }
}
