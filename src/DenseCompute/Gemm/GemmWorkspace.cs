using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// Per-thread packing buffer for A. It only grows, so after the first call at the largest
/// shape a thread never allocates again; pinned so the kernels can hold raw pointers.
/// </summary>
internal static unsafe class GemmWorkspace
{
    [ThreadStatic]
    private static float[]? s_buffer;

    // A second area for A packed once by a caller and read by every worker of its job, so the
    // caller's own chunks can still rent the first one.
    [ThreadStatic]
    private static float[]? s_shared;

    /// <summary>A 64-byte aligned scratch area of at least <paramref name="floats"/> floats, valid until this thread's next call.</summary>
    public static float* Rent(int floats) => Aligned(ref s_buffer, floats);

    /// <summary>Like <see cref="Rent"/>, from a second area that <see cref="Rent"/> does not touch.</summary>
    public static float* RentShared(int floats) => Aligned(ref s_shared, floats);

    private static float* Aligned(ref float[]? slot, int floats)
    {
        float[]? buffer = slot;
        if (buffer is null || buffer.Length < floats + 16) buffer = Grow(ref slot, floats);
        nuint start = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        return (float*)((start + 63) & ~(nuint)63);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float[] Grow(ref float[]? slot, int floats)
    {
        int size = (int)Math.Min(Array.MaxLength, BitOperations.RoundUpToPowerOf2((uint)(floats + 16)));
        float[] buffer = GC.AllocateUninitializedArray<float>(size, pinned: true);
        slot = buffer;
        return buffer;
    }
}
