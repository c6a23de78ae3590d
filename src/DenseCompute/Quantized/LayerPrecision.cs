namespace Recsys.DenseCompute.Quantized;

/// <summary>How a Linear layer stores its weights and computes its product.</summary>
public enum LayerPrecision
{
    /// <summary>fp32 weights, fp32 GEMM (the reference).</summary>
    Fp32,

    /// <summary>IEEE half weights (half the bytes), widened to fp32 in registers; fp32 arithmetic.</summary>
    Fp16,

    /// <summary>s8 weights (per output channel scale) x u8 activations (per batch scale and zero point), int32 sums.</summary>
    Int8,
}

public static class LayerPrecisions
{
    public static bool TryParse(string text, out LayerPrecision precision)
    {
        switch (text)
        {
            case "fp32": precision = LayerPrecision.Fp32; return true;
            case "fp16": precision = LayerPrecision.Fp16; return true;
            case "int8": precision = LayerPrecision.Int8; return true;
            default: precision = LayerPrecision.Fp32; return false;
        }
    }

    public static string Name(LayerPrecision precision) => precision switch
    {
        LayerPrecision.Fp16 => "fp16",
        LayerPrecision.Int8 => "int8",
        _ => "fp32",
    };
}
