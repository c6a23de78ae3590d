namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// The fp32 GEMM's multi-threaded Forward: the work is cut into chunks
/// (<see cref="GemmProblem.ChunkCount"/>) that the caller and the GEMM's own
/// <see cref="ChunkWorkers"/> claim. One multi-threaded call runs at a time; a concurrent caller
/// computes alone.
/// </summary>
internal static unsafe class GemmWorkers
{
    private static readonly ChunkWorkers s_pool = new("gemm-worker");

    /// <summary>
    /// Panel chunks per thread (at most: the split is on panel pairs). 1 gave a late worker nothing
    /// to do once the caller had claimed both halves; see bench/RESULTS-gemm.md for the measurement.
    /// </summary>
    internal static int PanelChunksPerThread { get; set; } = 8;

    // The job of the call holding the pool; written only while holding it.
    private static readonly GemmChunks s_job = new();

    /// <summary>The pool, so a benchmark can attach a <see cref="ChunkTrace"/>.</summary>
    internal static ChunkWorkers Pool => s_pool;

    public static void Run(in GemmProblem problem, GemmPath path, int threads)
    {
        if (!s_pool.TryEnter())
        {
            GemmDriver.Run(problem, path, 0, problem.M, 0, problem.PanelCount);
            return;
        }

        try
        {
            GemmProblem job = problem.WithPanelChunksPerThread(PanelChunksPerThread);
            if (job.SharesInput(threads))
            {
                // Every chunk covers all rows: pack A once here instead of once per chunk.
                float* packed = GemmWorkspace.RentShared(checked((int)GemmDriver.PackedInputFloats(job)));
                GemmDriver.PackAll(problem, packed);
                job = job.WithPackedInput(packed);
            }

            s_job.Problem = job;
            s_job.Path = path;
            s_job.Threads = threads;
            s_pool.Run(s_job, job.ChunkCount(threads), threads);
        }
        finally
        {
            s_pool.Exit();
        }
    }

    private sealed class GemmChunks : IChunkJob
    {
        public GemmProblem Problem;
        public GemmPath Path;
        public int Threads;

        public void RunChunk(int index)
        {
            Problem.Partition(Threads, index, out int m0, out int m1, out int p0, out int p1);
            GemmDriver.Run(Problem, Path, m0, m1, p0, p1);
        }
    }
}
