using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Recsys.Cli.Bench.Arrivals;

/// <summary>
/// Sleeps until a <see cref="Stopwatch"/> timestamp. .NET timers have millisecond granularity,
/// which at a few hundred QPS would bunch Poisson arrivals into 1 ms ticks; spinning instead
/// would take a core from the server on a small machine. On Linux, where Stopwatch reads
/// CLOCK_MONOTONIC in nanoseconds, clock_nanosleep with an absolute deadline wakes within the
/// kernel's timer slack (~50 µs) and burns nothing meanwhile. Elsewhere: sleep, then yield.
/// </summary>
public static class PreciseSleep
{
    private const int ClockMonotonic = 1;
    private const int TimerAbsolute = 1;
    private static readonly bool UseClockNanosleep = OperatingSystem.IsLinux() && Stopwatch.Frequency == 1_000_000_000;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_nanosleep")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int ClockNanosleep(int clock, int flags, ref Timespec request, IntPtr remaining);

    public static void Until(long timestamp, CancellationToken cancel)
    {
        while (!cancel.IsCancellationRequested)
        {
            long remaining = timestamp - Stopwatch.GetTimestamp();
            if (remaining <= 0) return;
            double ms = remaining * 1000.0 / Stopwatch.Frequency;
            // Long waits in slices, so a cancelled run stops within 50 ms.
            if (ms > 50)
            {
                Thread.Sleep(45);
                continue;
            }
            if (UseClockNanosleep)
            {
                var until = new Timespec { Seconds = timestamp / 1_000_000_000, Nanoseconds = timestamp % 1_000_000_000 };
                // EINTR or any failure just loops and re-checks the clock.
                _ = ClockNanosleep(ClockMonotonic, TimerAbsolute, ref until, IntPtr.Zero);
                continue;
            }
            if (ms > 1.5) Thread.Sleep((int)(ms - 1));
            else Thread.Yield();
        }
    }
}
