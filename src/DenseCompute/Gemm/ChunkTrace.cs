using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// Timestamps of the multi-threaded calls of one <see cref="ChunkWorkers"/> pool, for the
/// gemm-trace benchmark: where a 2-thread call spends its time (hand-off, each chunk, join).
/// A pool without a trace (the default) records nothing.
/// </summary>
/// <remarks>
/// Records live in arrays sized at construction, so tracing allocates nothing per call; calls past
/// the capacity are not recorded. Calls are numbered in publish order, which is also the order
/// of the pool's generations.
/// </remarks>
internal sealed partial class ChunkTrace
{
    private readonly CallRecord[] _calls;
    private readonly ChunkRecord[] _chunks;
    private int _callCount;
    private int _chunkCount;
    private long _firstGeneration = -1;

    public ChunkTrace(int calls, int chunks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(calls, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunks, 1);
        _calls = new CallRecord[calls];
        _chunks = new ChunkRecord[chunks];
    }

    /// <summary>When set, workers claim nothing: the caller runs every chunk alone, timing each as on one thread.</summary>
    public bool CallerOnly { get; set; }

    public ReadOnlySpan<CallRecord> Calls => _calls.AsSpan(0, Math.Min(_callCount, _calls.Length));

    public ReadOnlySpan<ChunkRecord> Chunks => _chunks.AsSpan(0, Math.Min(Volatile.Read(ref _chunkCount), _chunks.Length));

    internal void Published(long generation, int chunks, long ticks, int cpu)
    {
        if (_firstGeneration < 0) _firstGeneration = generation;
        int call = Call(generation);
        if (call < 0) return;
        _calls[call] = new CallRecord { Publish = ticks, Chunks = chunks, CallerCpu = cpu };
        _callCount = call + 1;
    }

    internal void CallerDone(long generation, long ticks)
    {
        int call = Call(generation);
        if (call >= 0) _calls[call].CallerDone = ticks;
    }

    internal void Joined(long generation, long ticks)
    {
        int call = Call(generation);
        if (call >= 0) _calls[call].Joined = ticks;
    }

    /// <summary>A worker saw the call's generation; <paramref name="slept"/>: it had gone to sleep since its last call.</summary>
    internal void WorkerSaw(long generation, long ticks, bool slept, int cpu)
    {
        int call = Call(generation);
        if (call < 0) return;
        _calls[call].WorkerSaw = ticks;
        _calls[call].WorkerSlept = slept;
        _calls[call].WorkerCpu = cpu;
    }

    internal void Chunk(long generation, int chunk, int thread, long start, long end, int cpu)
    {
        int call = Call(generation);
        if (call < 0) return;
        int slot = Interlocked.Increment(ref _chunkCount) - 1;
        if (slot < _chunks.Length) _chunks[slot] = new ChunkRecord { Call = call, Chunk = chunk, Thread = thread, Start = start, End = end, Cpu = cpu };
    }

    private int Call(long generation)
    {
        long call = generation - _firstGeneration;
        return _firstGeneration < 0 || call < 0 || call >= _calls.Length ? -1 : (int)call;
    }

    /// <summary>The vCPU the calling thread runs on, -1 where unknown.</summary>
    internal static int CurrentCpu()
    {
        if (!OperatingSystem.IsLinux()) return -1;
        try
        {
            return SchedGetCpu();
        }
        catch (EntryPointNotFoundException)
        {
            return -1;
        }
    }

    [LibraryImport("libc", EntryPoint = "sched_getcpu")]
    private static partial int SchedGetCpu();

    public static double Microseconds(long ticks) => ticks * 1e6 / Stopwatch.Frequency;

    /// <summary>One multi-threaded call: Stopwatch timestamps, 0 where the event did not happen.</summary>
    internal struct CallRecord
    {
        public long Publish;
        public long CallerDone;
        public long Joined;
        public long WorkerSaw;
        public bool WorkerSlept;
        public int Chunks;
        public int CallerCpu;
        public int WorkerCpu;
    }

    /// <summary>One chunk run by <see cref="Thread"/> (0 = the caller, 1.. = workers) on vCPU <see cref="Cpu"/>.</summary>
    internal struct ChunkRecord
    {
        public int Call;
        public int Chunk;
        public int Thread;
        public long Start;
        public long End;
        public int Cpu;
    }
}
