using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Quantized;

/// <summary>A reduced-precision layer whose Forward can be cut into row / panel parts that write disjoint outputs.</summary>
internal interface IPartitionedLayer
{
    /// <summary>Rows [m0, m1) x output panels [p0, p1) of the call described by <paramref name="job"/>.</summary>
    void RunPart(in QuantizedJob job, int m0, int m1, int p0, int p1);
}

/// <summary>
/// One multi-threaded Forward as raw pointers (pinned by the caller until every part is done), so it
/// reaches the worker without allocating. <see cref="Codes"/>, <see cref="Code"/> and <see cref="Path"/>
/// are the int8 layer's: its activations are quantized once, on the caller, over the whole batch, so
/// every part uses the same scale and the result does not depend on the split.
/// </summary>
internal readonly unsafe struct QuantizedJob(IPartitionedLayer layer, float* x, float* y, byte* codes, int m, ActivationCode code, int path)
{
    public IPartitionedLayer Layer { get; } = layer;
    public float* X { get; } = x;
    public float* Y { get; } = y;
    public byte* Codes { get; } = codes;
    public int M { get; } = m;
    public ActivationCode Code { get; } = code;
    public int Path { get; } = path;
}

/// <summary>
/// The multi-threaded Forward of the fp16 and int8 layers, with the fp32 GEMM's split policy
/// (<see cref="GemmProblem.ChunkCount"/> and <see cref="GemmProblem.Partition"/>): tall batches split rows,
/// shorter ones split output panels. The pool is apart from the GEMM's so an fp32 layer and a quantized
/// one never wait on each other.
/// </summary>
internal static class QuantizedWorkers
{
    private static readonly ChunkWorkers s_pool = new("quantized-worker");

    // The job of the call holding the pool; written only while holding it.
    private static readonly QuantizedChunks s_job = new();

    /// <summary>Threads a call of this shape gets: 1 below the GEMM's parallel threshold or when only one is allowed.</summary>
    public static int Threads(int maxThreads, int m, int k, int n)
    {
        if (maxThreads < 1) throw new ArgumentOutOfRangeException(nameof(maxThreads), maxThreads, "need at least one thread");
        int threads = Math.Min(maxThreads, Environment.ProcessorCount);
        return (long)m * k * n < GemmLayout.ParallelThreshold ? 1 : threads;
    }

    /// <summary>The split of a call on <paramref name="threads"/> threads: the fp32 GEMM's, for the same shape.</summary>
    public static unsafe GemmProblem Shape(int m, int k, int n) => new(null, null, m, k, n, null, null, Activation.None);

    public static void Run(in QuantizedJob job, int k, int n, int threads)
    {
        GemmProblem shape = Shape(job.M, k, n);
        if (!s_pool.TryEnter())
        {
            job.Layer.RunPart(job, 0, job.M, 0, shape.PanelCount);
            return;
        }

        try
        {
            s_job.Job = job;
            s_job.Shape = shape;
            s_job.Threads = threads;
            s_pool.Run(s_job, shape.ChunkCount(threads), threads);
        }
        finally
        {
            s_job.Job = default; // drop the layer reference: the job may be the last thing holding it
            s_pool.Exit();
        }
    }

    private sealed class QuantizedChunks : IChunkJob
    {
        public QuantizedJob Job;
        public GemmProblem Shape;
        public int Threads;

        public void RunChunk(int index)
        {
            Shape.Partition(Threads, index, out int m0, out int m1, out int p0, out int p1);
            Job.Layer.RunPart(Job, m0, m1, p0, p1);
        }
    }
}
