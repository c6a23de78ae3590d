using System.Diagnostics;
using System.Runtime.ExceptionServices;
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
/// The helper threads of the fp16 and int8 layers, with the fp32 GEMM's policy (<see cref="GemmWorkers"/>,
/// <see cref="GemmProblem.ChunkCount"/> and <see cref="GemmProblem.Partition"/>): tall batches split rows,
/// shorter ones split output panels; every thread, the caller included, claims parts from a shared counter,
/// so a worker that wakes late costs nothing. One multi-threaded call runs at a time; a concurrent caller
/// computes alone. The threads are apart from the GEMM's so an fp32 layer and a quantized one never wait on each other.
/// </summary>
internal static class QuantizedWorkers
{
    private static readonly long s_spinTicks = Stopwatch.Frequency / 10_000; // 100 us: layers of one MLP arrive back to back

    private static readonly Lock s_gate = new();
    private static readonly ManualResetEventSlim s_wake = new(false, 0);
    private static Thread[] s_threads = [];

    // The job. Fields are written before s_state publishes a new generation and read after it.
    private static QuantizedJob s_job;
    private static GemmProblem s_shape;
    private static int s_chunks;
    private static int s_callThreads; // the thread count the split was cut for (GemmProblem.Partition takes it)
    private static long s_state; // generation << 32 | next chunk to claim
    private static int s_completed;
    private static Exception? s_error;

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
        if (!s_gate.TryEnter())
        {
            job.Layer.RunPart(job, 0, job.M, 0, shape.PanelCount);
            return;
        }

        try
        {
            EnsureWorkers(threads - 1);
            s_job = job;
            s_shape = shape;
            s_chunks = shape.ChunkCount(threads);
            s_callThreads = threads;
            s_completed = 0;
            s_error = null;
            long generation = (Volatile.Read(ref s_state) >> 32) + 1;
            Interlocked.Exchange(ref s_state, generation << 32);
            s_wake.Set();

            Work(generation);
            var spin = default(SpinWait);
            while (Volatile.Read(ref s_completed) < s_chunks) spin.SpinOnce(sleep1Threshold: -1);
            if (s_error is { } error) ExceptionDispatchInfo.Throw(error);
        }
        finally
        {
            s_job = default; // drop the layer reference: the job may be the last thing holding it
            s_gate.Exit();
        }
    }

    private static void Work(long generation)
    {
        // Snapshot before claiming: a successful claim proves these belong to the same generation.
        QuantizedJob job = s_job;
        GemmProblem shape = s_shape;
        int chunks = s_chunks;
        int threads = s_callThreads;
        while (true)
        {
            long state = Volatile.Read(ref s_state);
            int next = (int)state;
            if (state >> 32 != generation || next >= chunks) return;
            if (Interlocked.CompareExchange(ref s_state, state + 1, state) != state) continue;
            try
            {
                shape.Partition(threads, next, out int m0, out int m1, out int p0, out int p1);
                job.Layer.RunPart(job, m0, m1, p0, p1);
            }
            catch (Exception e)
            {
                s_error = e;
            }

            Interlocked.Increment(ref s_completed);
        }
    }

    private static void EnsureWorkers(int count)
    {
        if (s_threads.Length >= count) return;
        var threads = new Thread[count];
        s_threads.CopyTo(threads, 0);
        for (int i = s_threads.Length; i < count; i++)
        {
            threads[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"quantized-worker-{i + 1}" };
            threads[i].Start();
        }

        s_threads = threads;
    }

    private static void WorkerLoop()
    {
        long seen = Volatile.Read(ref s_state) >> 32;
        while (true)
        {
            long idleSince = Stopwatch.GetTimestamp();
            long generation;
            while ((generation = Volatile.Read(ref s_state) >> 32) == seen)
            {
                if (Stopwatch.GetTimestamp() - idleSince < s_spinTicks)
                {
                    Thread.SpinWait(20);
                    continue;
                }

                s_wake.Wait();
                s_wake.Reset();
                idleSince = Stopwatch.GetTimestamp();
            }

            seen = generation;
            Thread.MemoryBarrier();
            Work(generation);
        }
    }
}
