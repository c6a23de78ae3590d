using System.Runtime.InteropServices;

namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// The calling thread's CPU set on Linux, so a GEMM worker the scheduler placed on its caller's core
/// can step off it (<see cref="ChunkWorkers.IdlePoll.MoveOffCallersCore"/>). Elsewhere every call is a no-op that reports false.
/// </summary>
internal static partial class CpuAffinity
{
    /// <summary>Words of a cpu_set_t (1024 CPUs).</summary>
    public const int MaskWords = 16;

    /// <summary>Reads the calling thread's CPU set into <paramref name="mask"/>; false where unknown.</summary>
    public static bool TryGet(Span<ulong> mask)
    {
        if (!OperatingSystem.IsLinux() || mask.Length < MaskWords) return false;
        try
        {
            return SchedGetAffinity(0, (nuint)(MaskWords * sizeof(ulong)), ref MemoryMarshal.GetReference(mask)) == 0;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Restricts the calling thread to <paramref name="allowed"/> without <paramref name="cpu"/>; false if nothing would be left or the call failed.</summary>
    public static bool TrySetWithout(ReadOnlySpan<ulong> allowed, int cpu, Span<ulong> scratch)
    {
        if (!OperatingSystem.IsLinux() || cpu < 0 || cpu >= MaskWords * 64 || allowed.Length < MaskWords || scratch.Length < MaskWords) return false;
        allowed[..MaskWords].CopyTo(scratch);
        scratch[cpu / 64] &= ~(1UL << (cpu % 64));
        if (scratch[..MaskWords].IndexOfAnyExcept(0UL) < 0) return false;
        return TrySet(scratch);
    }

    /// <summary>Sets the calling thread's CPU set to <paramref name="mask"/>.</summary>
    public static bool TrySet(ReadOnlySpan<ulong> mask)
    {
        if (!OperatingSystem.IsLinux() || mask.Length < MaskWords) return false;
        try
        {
            return SchedSetAffinity(0, (nuint)(MaskWords * sizeof(ulong)), in MemoryMarshal.GetReference(mask)) == 0;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "sched_getaffinity")]
    private static partial int SchedGetAffinity(int pid, nuint size, ref ulong mask);

    [LibraryImport("libc", EntryPoint = "sched_setaffinity")]
    private static partial int SchedSetAffinity(int pid, nuint size, in ulong mask);
}
