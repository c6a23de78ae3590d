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

    /// <summary>A 64-byte aligned scratch area of at least <paramref name="floats"/> floats, valid until this thread's next call.</summary>
    public static float* Rent(int floats)
    {
        float[]? buffer = s_buffer;
        if (buffer is null || buffer.Length < floats + 16) buffer = Grow(floats);
        nuint start = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        return (float*)((start + 63) & ~(nuint)63);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float[] Grow(int floats)
    {
        int size = (int)Math.Min(Array.MaxLength, BitOperations.RoundUpToPowerOf2((uint)(floats + 16)));
        float[] buffer = GC.AllocateUninitializedArray<float>(size, pinned: true);
        s_buffer = buffer;
        return buffer;
    }
}
