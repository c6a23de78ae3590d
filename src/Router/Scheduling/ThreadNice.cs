using System.Runtime.InteropServices;

namespace Recsys.Router.Scheduling;

/// <summary>
/// The Linux nice value of the calling thread. .NET's Thread.Priority is ignored on Linux, and
/// only per-thread nice moves CPU between the threads of one process (with
/// kernel.sched_autogroup_enabled the whole process is one group against other sessions, so nice
/// is the only lever inside it). Raising nice needs no privilege; lowering it again does, so a
/// thread is niced once, at start, and keeps that value for its life.
/// </summary>
internal static partial class ThreadNice
{
    private const int PrioProcess = 0;

    /// <summary>The kernel id of the calling thread (what /proc/self/task/&lt;tid&gt; names), or 0 off Linux.</summary>
    public static int CurrentThreadId() => OperatingSystem.IsLinux() ? gettid() : 0;

    /// <summary>Sets the calling thread's nice value; false (nothing changed) off Linux or when the kernel refuses.</summary>
    public static bool TrySet(int nice)
    {
        if (!OperatingSystem.IsLinux()) return false;
        return setpriority(PrioProcess, (uint)gettid(), nice) == 0;
    }

    [LibraryImport("libc")]
    private static partial int gettid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpriority(int which, uint who, int prio);
}
