using System.Runtime.InteropServices;

namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// Native memory for embedding tables. Random row gathers miss the TLB on almost every row with 4 KiB
/// pages; 2 MiB transparent huge pages (plus prefetch) are worth about 2.6x on this machine
/// (/work/shared/BASELINES.md). On Linux the block is an anonymous mapping aligned to 2 MiB and advised
/// MADV_HUGEPAGE; the kernel zero-fills it lazily, so a loader touches each page once. Elsewhere, or if
/// the mapping fails, it is an ordinary aligned allocation, cleared.
/// </summary>
internal sealed unsafe partial class TableMemory : IDisposable
{
    private const nuint HugePage = 2 << 20;
    private const nuint SmallBlock = 1 << 20; // below this a huge page would mostly be waste
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20, MadvHugePage = 14;

    private void* _mapping;
    private nuint _mappingBytes;

    public TableMemory(nuint bytes)
    {
        bytes = Math.Max(bytes, 1);
        if (OperatingSystem.IsLinux() && bytes >= SmallBlock && TryMapHuge(bytes)) return;
        Pointer = (byte*)NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(Pointer, bytes);
    }

    public byte* Pointer { get; private set; }

    /// <summary>True when the block was advised for transparent huge pages (the kernel may still decline).</summary>
    public bool HugePagesAdvised { get; private set; }

    private bool TryMapHuge(nuint bytes)
    {
        nuint length = (bytes + HugePage - 1) & ~(HugePage - 1);
        nuint mappingBytes = length + HugePage; // slack to align the start
        void* mapping = mmap(null, mappingBytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (mapping == (void*)-1) return false;
        _mapping = mapping;
        _mappingBytes = mappingBytes;
        Pointer = (byte*)(((nuint)mapping + HugePage - 1) & ~(HugePage - 1));
        // A refusal (THP disabled, old kernel) only costs speed, so it is not an error.
        HugePagesAdvised = madvise(Pointer, length, MadvHugePage) == 0;
        return true;
    }

    public void Dispose()
    {
        if (_mapping != null)
        {
            _ = munmap(_mapping, _mappingBytes);
            _mapping = null;
        }
        else if (Pointer != null)
        {
            NativeMemory.AlignedFree(Pointer);
        }
        Pointer = null;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(void* addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(void* addr, nuint length, int advice);
}
