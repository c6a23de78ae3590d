using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Recsys.DenseCompute.Gemm;

/// <summary>One multi-threaded call cut into chunks that write disjoint outputs.</summary>
internal interface IChunkJob
{
    void RunChunk(int index);
}

/// <summary>
/// Dedicated threads that help with a multi-threaded Forward. A Forward is a few to a few
/// hundred microseconds, so a thread-pool hand-off per call would cost a large share of it.
/// </summary>
/// <remarks>
/// Every thread, the caller included, claims chunks from a shared counter. On a busy machine a
/// worker may not get a core in time; the caller then simply claims the remaining chunks too: a
/// worker that wakes late costs nothing, one preempted mid-chunk costs at most that chunk. The
/// counter carries a generation so a worker that wakes after its job finished cannot claim work
/// from the next one; the job's fields are read only after a successful claim, and the next job
/// cannot be published before every chunk of this one has completed. Workers spin for a short
/// while after a job (layers of one MLP arrive back to back), then sleep on an event. One
/// multi-threaded call runs at a time per pool (<see cref="TryEnter"/>); a concurrent caller
/// computes alone.
/// </remarks>
internal sealed class ChunkWorkers(string threadName)
{
    /// <summary>How long an idle worker polls for the next job before it sleeps.</summary>
    private static readonly long s_spinTicks = Stopwatch.Frequency / 10_000; // 100 us

    private readonly Lock _gate = new();
    private readonly ManualResetEventSlim _wake = new(false, 0);
    private Thread[] _workers = [];

    // The job. Written before _state publishes a new generation and read after a claim of it.
    private IChunkJob? _job;
    private int _chunks;
    private long _state; // generation << 32 | next chunk to claim
    private int _completed;
    private Exception? _error;

    /// <summary>Takes the pool for one call; false while another call holds it.</summary>
    public bool TryEnter() => _gate.TryEnter();

    /// <summary>Releases the pool taken by <see cref="TryEnter"/>.</summary>
    public void Exit()
    {
        _job = null; // drop the job: it may be the last thing holding a layer
        _gate.Exit();
    }

    /// <summary>Runs chunks [0, <paramref name="chunks"/>) of <paramref name="job"/> on the caller and <paramref name="threads"/> - 1 workers. The caller holds the pool.</summary>
    public void Run(IChunkJob job, int chunks, int threads)
    {
        EnsureWorkers(threads - 1);
        _job = job;
        _chunks = chunks;
        _completed = 0;
        _error = null;
        long generation = (Volatile.Read(ref _state) >> 32) + 1;
        Interlocked.Exchange(ref _state, generation << 32);
        _wake.Set();

        Work(generation);
        var spin = default(SpinWait);
        while (Volatile.Read(ref _completed) < _chunks) spin.SpinOnce(sleep1Threshold: -1);
        if (_error is { } error) ExceptionDispatchInfo.Throw(error);
    }

    /// <summary>Claims and runs chunks of job <paramref name="generation"/> until none are left.</summary>
    private void Work(long generation)
    {
        while (true)
        {
            long state = Volatile.Read(ref _state);
            int next = (int)state;
            if (state >> 32 != generation || next >= Volatile.Read(ref _chunks)) return;
            if (Interlocked.CompareExchange(ref _state, state + 1, state) != state) continue;
            try
            {
                _job!.RunChunk(next);
            }
            catch (Exception e)
            {
                _error = e;
            }

            Interlocked.Increment(ref _completed);
        }
    }

    private void EnsureWorkers(int count)
    {
        if (_workers.Length >= count) return;
        var threads = new Thread[count];
        _workers.CopyTo(threads, 0);
        for (int i = _workers.Length; i < count; i++)
        {
            threads[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"{threadName}-{i + 1}" };
            threads[i].Start();
        }

        _workers = threads;
    }

    private void WorkerLoop()
    {
        long seen = Volatile.Read(ref _state) >> 32;
        while (true)
        {
            long idleSince = Stopwatch.GetTimestamp();
            long generation;
            while ((generation = Volatile.Read(ref _state) >> 32) == seen)
            {
                if (Stopwatch.GetTimestamp() - idleSince < s_spinTicks)
                {
                    Thread.SpinWait(20);
                    continue;
                }

                _wake.Wait();
                _wake.Reset();
                idleSince = Stopwatch.GetTimestamp();
            }

            seen = generation;
            Thread.MemoryBarrier();
            Work(generation);
        }
    }
}
