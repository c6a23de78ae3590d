using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

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
/// Each thread (the caller is thread 0) owns a home range of the chunks, the same one every call,
/// and claims it from the front; a thread done with its own range takes what is left of the
/// others' from their back. Chunk i thus runs on the same thread call after call, and its weights
/// stay in that core's caches, while a worker that wakes late, or not at all, only loses the chunks
/// the others reached first: with many small chunks the threads meet wherever the late one got to.
/// A preempted worker costs at most the chunk it holds.
/// Every range carries the job's generation so a worker that wakes after its job finished cannot
/// claim work from the next one; the job's fields are read only after a successful claim, and the
/// next job cannot be published before every chunk of this one has completed. Workers spin for a
/// short while after a job (layers of one MLP arrive back to back), then sleep on an event. One
/// multi-threaded call runs at a time per pool (<see cref="TryEnter"/>); a concurrent caller
/// computes alone.
/// </remarks>
internal sealed class ChunkWorkers(string threadName)
{
    /// <summary>How long an idle worker polls for the next job before it sleeps (settable for benchmarks).</summary>
    internal static long SpinTicks { get; set; } = Stopwatch.Frequency / 10_000; // 100 us

    /// <summary>Pause iterations (<see cref="Thread.SpinWait"/>) between two polls of an idle worker (settable for benchmarks).</summary>
    internal static int SpinIterations { get; set; } = 20;

    /// <summary>What an idle worker does between two polls (settable for benchmarks).</summary>
    internal static IdlePoll Poll { get; set; } = IdlePoll.Pause;

    /// <summary>Chunk indices are 16-bit fields of a range's state.</summary>
    public const int MaxChunks = ushort.MaxValue;

    private readonly Lock _gate = new();
    private readonly ManualResetEventSlim _wake = new(false, 0);
    private Thread[] _workers = [];

    // Home ranges, one per thread: generation << 32 | end << 16 | next, each on its own cache lines
    // because the owner claims from it on every chunk.
    private PaddedLong[] _ranges = [];

    // The job. Written before _generation publishes a new one and read after a claim of it.
    private IChunkJob? _job;
    private int _chunks;
    private int _threads;
    private Exception? _error;

    // Polled by every idle worker and added to once per thread per call: apart from the job fields and each other.
    private PaddedLong _generation;
    private PaddedLong _completed;

    // The vCPU of the last caller, for the *CallersCore poll modes; a stale value only costs a poll style.
    private int _callerCpu = -1;

    /// <summary>Records the timing of every call while set (benchmarks only); null costs one test per chunk.</summary>
    public ChunkTrace? Trace { get; set; }

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
        ArgumentOutOfRangeException.ThrowIfGreaterThan(chunks, MaxChunks);
        ArgumentOutOfRangeException.ThrowIfNegative(chunks);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        EnsureWorkers(threads);
        _job = job;
        if (Poll is IdlePoll.YieldOnCallersCore or IdlePoll.MoveOffCallersCore) _callerCpu = Thread.GetCurrentProcessorId();
        _chunks = chunks;
        _threads = threads;
        _completed.Value = 0;
        _error = null;
        long generation = _generation.Value + 1;
        PaddedLong[] ranges = _ranges;
        for (int t = 0; t < threads; t++)
        {
            long start = (long)chunks * t / threads, end = (long)chunks * (t + 1) / threads;
            Volatile.Write(ref ranges[t].Value, (generation << 32) | (end << 16) | start);
        }

        ChunkTrace? trace = Trace;
        trace?.Published(generation, chunks, Stopwatch.GetTimestamp(), ChunkTrace.CurrentCpu());
        Interlocked.Exchange(ref _generation.Value, generation);
        _wake.Set();

        Work(generation, 0);
        trace?.CallerDone(generation, Stopwatch.GetTimestamp());
        var spin = default(SpinWait);
        while (Volatile.Read(ref _completed.Value) < chunks) spin.SpinOnce(sleep1Threshold: -1);
        trace?.Joined(generation, Stopwatch.GetTimestamp());
        if (_error is { } error) ExceptionDispatchInfo.Throw(error);
    }

    /// <summary>Thread <paramref name="thread"/> runs its home range of job <paramref name="generation"/>, then the rest of the others'.</summary>
    private void Work(long generation, int thread)
    {
        ChunkTrace? trace = Trace;
        if (trace is { CallerOnly: true } && thread != 0) return;
        PaddedLong[] ranges = _ranges;
        int threads = Math.Min(Volatile.Read(ref _threads), ranges.Length);
        if (thread >= threads) return; // a pool grown for a wider job: this thread sits this one out

        int done = 0;
        for (int i = 0; i < threads; i++)
        {
            // The home range first, from its front; then the others, each from its back.
            int owner = (thread + i) % threads;
            long step = i == 0 ? 1 : -(1L << 16);
            while (true)
            {
                long state = Volatile.Read(ref ranges[owner].Value);
                int next = (int)(state & 0xFFFF), end = (int)((state >> 16) & 0xFFFF);
                if (state >> 32 != generation || next >= end) break;
                if (Interlocked.CompareExchange(ref ranges[owner].Value, state + step, state) != state) continue;
                RunChunk(i == 0 ? next : end - 1, generation, thread, trace);
                done++;
            }
        }

        if (done > 0) Interlocked.Add(ref _completed.Value, done);
    }

    private void RunChunk(int chunk, long generation, int thread, ChunkTrace? trace)
    {
        long start = trace is null ? 0 : Stopwatch.GetTimestamp();
        try
        {
            _job!.RunChunk(chunk);
        }
        catch (Exception e)
        {
            _error = e;
        }

        trace?.Chunk(generation, chunk, thread, start, Stopwatch.GetTimestamp(), ChunkTrace.CurrentCpu());
    }

    /// <summary>Home ranges for <paramref name="threads"/> threads and the workers beside the caller.</summary>
    private void EnsureWorkers(int threads)
    {
        // Grown only while no job runs (the caller holds the pool and the last job has completed);
        // a late worker still reading the old array finds only stale generations there.
        if (_ranges.Length < threads) _ranges = new PaddedLong[threads];
        int count = threads - 1;
        if (_workers.Length >= count) return;
        var workers = new Thread[count];
        _workers.CopyTo(workers, 0);
        for (int i = _workers.Length; i < count; i++)
        {
            int thread = i + 1;
            workers[i] = new Thread(() => WorkerLoop(thread)) { IsBackground = true, Name = $"{threadName}-{thread}" };
            workers[i].Start();
        }

        _workers = workers;
    }

    private void WorkerLoop(int thread)
    {
        // The CPU set the worker started with, restored before it sleeps so a move off the caller's core never outlives one busy spell.
        Span<ulong> allowed = stackalloc ulong[CpuAffinity.MaskWords];
        Span<ulong> scratch = stackalloc ulong[CpuAffinity.MaskWords];
        bool knowsAffinity = CpuAffinity.TryGet(allowed);
        int movedOff = -1;
        long seen = Volatile.Read(ref _generation.Value);
        while (true)
        {
            long idleSince = Stopwatch.GetTimestamp();
            long generation;
            bool slept = false;
            while ((generation = Volatile.Read(ref _generation.Value)) == seen)
            {
                if (Stopwatch.GetTimestamp() - idleSince < SpinTicks)
                {
                    IdlePoll poll = Poll;
                    if (poll == IdlePoll.Pause)
                    {
                        Thread.SpinWait(SpinIterations);
                    }
                    else if (poll == IdlePoll.Yield)
                    {
                        Thread.Yield();
                    }
                    else if (Thread.GetCurrentProcessorId() != _callerCpu)
                    {
                        Thread.SpinWait(SpinIterations);
                    }
                    else
                    {
                        int callerCpu = _callerCpu;
                        if (poll == IdlePoll.MoveOffCallersCore && knowsAffinity && movedOff != callerCpu && CpuAffinity.TrySetWithout(allowed, callerCpu, scratch)) movedOff = callerCpu;
                        Thread.Yield();
                    }

                    continue;
                }

                if (movedOff >= 0 && CpuAffinity.TrySet(allowed)) movedOff = -1;
                _wake.Wait();
                _wake.Reset();
                slept = true;
                idleSince = Stopwatch.GetTimestamp();
            }

            seen = generation;
            Trace?.WorkerSaw(generation, Stopwatch.GetTimestamp(), slept, ChunkTrace.CurrentCpu());
            Work(generation, thread);
        }
    }

    /// <summary>How an idle worker waits between two polls for the next job.</summary>
    internal enum IdlePoll
    {
        /// <summary>Pause instructions: the quickest to notice a job, but a worker the scheduler put on the caller's core takes time from it.</summary>
        Pause,

        /// <summary>Give the core to any other runnable thread.</summary>
        Yield,

        /// <summary>Yield while on the core the last caller ran on, pause elsewhere.</summary>
        YieldOnCallersCore,

        /// <summary>As <see cref="YieldOnCallersCore"/>, and leave the caller's core (CPU affinity, undone before sleeping).</summary>
        MoveOffCallersCore,
    }

    /// <summary>A long alone on its pair of cache lines (the adjacent-line prefetcher fetches lines in pairs).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private struct PaddedLong
    {
        [FieldOffset(64)]
        public long Value;
    }
}
