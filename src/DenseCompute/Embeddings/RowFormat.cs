namespace Recsys.DenseCompute.Embeddings;

/// <summary>How one embedding row is stored. Int8 and Int4 are FBGEMM's row-wise layouts.</summary>
public enum RowFormat
{
    /// <summary>D fp32 values.</summary>
    Fp32,
    /// <summary>D IEEE half values.</summary>
    Fp16,
    /// <summary>D uint8 codes, then fp32 scale, then fp32 bias: value = code * scale + bias.</summary>
    Int8,
    /// <summary>ceil(D/2) bytes of nibbles (low nibble first), then fp16 scale, then fp16 bias.</summary>
    Int4,
}

public static class RowLayout
{
    /// <summary>Bytes one row of <paramref name="dim"/> values takes in <paramref name="format"/>.</summary>
    public static int RowBytes(RowFormat format, int dim) => format switch
    {
        RowFormat.Fp32 => dim * 4,
        RowFormat.Fp16 => dim * 2,
        RowFormat.Int8 => dim + 8,
        RowFormat.Int4 => (dim + 1) / 2 + 4,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown row format"),
    };

    /// <summary>Parses the model.json spelling ("fp32", "fp16", "int8", "int4").</summary>
    public static bool TryParse(string? text, out RowFormat format)
    {
        switch (text?.ToLowerInvariant())
        {
            case "fp32" or "float32" or "f32": format = RowFormat.Fp32; return true;
            case "fp16" or "float16" or "f16": format = RowFormat.Fp16; return true;
            case "int8": format = RowFormat.Int8; return true;
            case "int4": format = RowFormat.Int4; return true;
            default: format = default; return false;
        }
    }

    public static string Name(RowFormat format) => format switch
    {
        RowFormat.Fp32 => "fp32",
        RowFormat.Fp16 => "fp16",
        RowFormat.Int8 => "int8",
        RowFormat.Int4 => "int4",
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };
}
