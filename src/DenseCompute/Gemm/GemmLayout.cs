namespace Recsys.DenseCompute.Gemm;

/// <summary>Blocking constants shared by the packer, the driver and the kernels.</summary>
internal static class GemmLayout
{
    /// <summary>Output columns per packed weight panel: two zmm, four ymm.</summary>
    public const int PanelWidth = 32;

    /// <summary>
    /// K block for tall inputs: a 32-column panel slice of KC rows is 32 KiB, so it stays in
    /// L1 while every row tile of the M block passes over it.
    /// </summary>
    public const int KBlock = 256;

    /// <summary>
    /// Row stride of packed A. A compile-time stride turns each row's broadcast into a
    /// constant displacement, so packing is a plain row copy instead of a transpose.
    /// </summary>
    public const int ARowStride = KBlock;

    /// <summary>Row tiles per M block: 18 x 14 rows x 256 k of packed A is 252 KiB, an L2 share.</summary>
    public const int TilesPerMBlock = 18;

    /// <summary>
    /// Below this many multiply-adds a second thread costs more to wake than it saves
    /// (a 512 x 256 layer at batch 1 is about 5 us on one core).
    /// </summary>
    public const long ParallelThreshold = 128 * 1024;

    public static int PanelCount(int outFeatures) => (outFeatures + PanelWidth - 1) / PanelWidth;
}
