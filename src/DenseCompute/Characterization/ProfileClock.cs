using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Recsys.DenseCompute.Characterization;

/// <summary>What the profiler's timers read.</summary>
public enum ProfileClock
{
    /// <summary>Monotonic wall time: what a caller waits, including time the thread waited for a core.</summary>
    Wall,
    /// <summary>
    /// The thread's own CPU time: leaves out the waits for a core, so an operator longer than a
    /// scheduler slice is not blamed for other processes on a loaded machine. Costs a system call
    /// per reading (a few hundred ns), too much for microsecond operators.
    /// </summary>
    ThreadCpu,
}

/// <summary>Reads a <see cref="ProfileClock"/> in nanoseconds.</summary>
internal static unsafe partial class ProfileClocks
{
    private const int ClockThreadCpuTimeId = 3;

    public static bool IsSupported(ProfileClock clock) => clock == ProfileClock.Wall || OperatingSystem.IsLinux();

    public static long Now(ProfileClock clock) => clock == ProfileClock.Wall ? Stopwatch.GetTimestamp() : ThreadCpuNs();

    public static double NanosecondsPerTick(ProfileClock clock) => clock == ProfileClock.Wall ? 1e9 / Stopwatch.Frequency : 1.0;

    private static long ThreadCpuNs()
    {
        Timespec t;
        if (clock_gettime(ClockThreadCpuTimeId, &t) != 0) throw new PlatformNotSupportedException($"clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed with errno {Marshal.GetLastPInvokeError()}");
        return t.Seconds * 1_000_000_000L + t.Nanoseconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int clock_gettime(int clock, Timespec* time);
}
