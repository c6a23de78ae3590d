using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// Dedicated threads that help with a multi-threaded Forward. A Forward is a few to a few
/// hundred microseconds, so a thread-pool hand-off per call would cost a large share of it.
/// </summary>
/// <remarks>
/// The work is cut into chunks (<see cref="GemmProblem.ChunkCount"/>) and every thread,
/// the caller included, claims chunks from a shared counter. On a busy machine a worker
/// may not get a core in time; the caller then simply claims the remaining chunks too: a
/// worker that wakes late costs nothing, one preempted mid-chunk costs at most that chunk. The counter carries a generation so a
/// worker that wakes after its job finished cannot claim work from the next one.
/// Workers spin for a short while after a job (layers of one MLP arrive back to back),
/// then sleep on an event. One multi-threaded call runs at a time; a concurrent caller
/// computes alone.
/// </remarks>
internal static unsafe class GemmWorkers
{
    /// <summary>How long an idle worker polls for the next job before it sleeps.</summary>
    private static readonly long s_spinTicks = Stopwatch.Frequency / 10_000; // 100 us

    private static readonly Lock s_gate = new();
    private static readonly ManualResetEventSlim s_wake = new(false, 0);
    private static Thread[] s_workers = [];

    // The job. Fields are written before s_state publishes a new generation and read after it.
    private static GemmProblem s_problem;
    private static GemmPath s_path;
    private static int s_threads;
    private static int s_chunks;
    private static long s_state; // generation << 32 | next chunk to claim
    private static int s_completed;
    private static Exception? s_error;

    public static void Run(in GemmProblem problem, GemmPath path, int threads)
    {
        if (!s_gate.TryEnter())
        {
            GemmDriver.Run(problem, path, 0, problem.M, 0, problem.PanelCount);
            return;
        }

        try
        {
            EnsureWorkers(threads - 1);
            GemmProblem job = problem;
            if (problem.SharesInput(threads))
            {
                // Every chunk covers all rows: pack A once here instead of once per chunk.
                float* packed = GemmWorkspace.RentShared(checked((int)GemmDriver.PackedInputFloats(problem)));
                GemmDriver.PackAll(problem, packed);
                job = problem.WithPackedInput(packed);
            }

            s_problem = job;
            s_path = path;
            s_threads = threads;
            s_chunks = job.ChunkCount(threads);
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
            s_gate.Exit();
        }
    }

    /// <summary>Claims and runs chunks of job <paramref name="generation"/> until none are left.</summary>
    private static void Work(long generation)
    {
        // Snapshot before claiming: a successful claim proves these belong to the same generation.
        GemmProblem problem = s_problem;
        GemmPath path = s_path;
        int threads = s_threads;
        int chunks = s_chunks;
        while (true)
        {
            long state = Volatile.Read(ref s_state);
            int next = (int)state;
            if (state >> 32 != generation || next >= chunks) return;
            if (Interlocked.CompareExchange(ref s_state, state + 1, state) != state) continue;
            try
            {
                problem.Partition(threads, next, out int m0, out int m1, out int p0, out int p1);
                GemmDriver.Run(problem, path, m0, m1, p0, p1);
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
        if (s_workers.Length >= count) return;
        var threads = new Thread[count];
        s_workers.CopyTo(threads, 0);
        for (int i = s_workers.Length; i < count; i++)
        {
            threads[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"gemm-worker-{i + 1}" };
            threads[i].Start();
        }

        s_workers = threads;
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
            // Snapshot of the job fields happens inside Work; read them only after the new generation is seen.
            Thread.MemoryBarrier();
            Work(generation);
        }
    }
}
