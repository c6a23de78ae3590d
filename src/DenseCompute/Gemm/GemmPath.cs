using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Recsys.DenseCompute.Gemm;

/// <summary>The instruction set a GEMM runs on; tests force each one.</summary>
internal enum GemmPath
{
    Scalar,
    Avx2,
    Avx512,
}

internal static class GemmPaths
{
    /// <summary>The widest path this machine runs.</summary>
    public static readonly GemmPath Best =
        Avx512F.IsSupported && Vector512.IsHardwareAccelerated ? GemmPath.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? GemmPath.Avx2
        : GemmPath.Scalar;

    public static bool IsSupported(GemmPath path) => path switch
    {
        GemmPath.Avx512 => Avx512F.IsSupported,
        GemmPath.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };
}
