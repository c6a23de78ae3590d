using System.Buffers.Binary;

namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// Encodes fp32 rows into a row format and accumulates stored rows back into fp32.
/// Quantization is FBGEMM's row-wise min/max (scale = (max - min) / levels, bias = min), bit for bit:
/// tests/fixtures/rowformats holds torch's prepacked bytes to prove it. The scalar Accumulate is the
/// reference the SIMD bag kernels are tested against.
/// </summary>
public static class RowCodec
{
    public static void Encode(ReadOnlySpan<float> row, RowFormat format, Span<byte> destination)
    {
        int dim = row.Length;
        if (destination.Length < RowLayout.RowBytes(format, dim))
        {
            throw new ArgumentException($"destination holds {destination.Length} bytes, a {format} row of {dim} needs {RowLayout.RowBytes(format, dim)}", nameof(destination));
        }
        switch (format)
        {
            case RowFormat.Fp32:
                for (int i = 0; i < dim; i++) BinaryPrimitives.WriteSingleLittleEndian(destination[(i * 4)..], row[i]);
                break;
            case RowFormat.Fp16:
                for (int i = 0; i < dim; i++) BinaryPrimitives.WriteHalfLittleEndian(destination[(i * 2)..], (Half)row[i]);
                break;
            case RowFormat.Int8:
                EncodeInt8(row, destination);
                break;
            case RowFormat.Int4:
                EncodeInt4(row, destination);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format));
        }
    }

    /// <summary>acc[i] += weight * value(row, i) for a stored row of <paramref name="dim"/> values.</summary>
    public static void Accumulate(ReadOnlySpan<byte> row, RowFormat format, int dim, float weight, Span<float> acc)
    {
        switch (format)
        {
            case RowFormat.Fp32:
                for (int i = 0; i < dim; i++) acc[i] += weight * BinaryPrimitives.ReadSingleLittleEndian(row[(i * 4)..]);
                break;
            case RowFormat.Fp16:
                for (int i = 0; i < dim; i++) acc[i] += weight * (float)BinaryPrimitives.ReadHalfLittleEndian(row[(i * 2)..]);
                break;
            case RowFormat.Int8:
                {
                    float scale = BinaryPrimitives.ReadSingleLittleEndian(row[dim..]);
                    float bias = BinaryPrimitives.ReadSingleLittleEndian(row[(dim + 4)..]);
                    for (int i = 0; i < dim; i++) acc[i] += weight * (row[i] * scale + bias);
                    break;
                }
            case RowFormat.Int4:
                {
                    int packed = (dim + 1) / 2;
                    float scale = (float)BinaryPrimitives.ReadHalfLittleEndian(row[packed..]);
                    float bias = (float)BinaryPrimitives.ReadHalfLittleEndian(row[(packed + 2)..]);
                    for (int i = 0; i < dim; i++)
                    {
                        int q = (i & 1) == 0 ? row[i >> 1] & 0xF : row[i >> 1] >> 4;
                        acc[i] += weight * (q * scale + bias);
                    }
                    break;
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(format));
        }
    }

    /// <summary>The fp32 values a stored row represents.</summary>
    public static void Decode(ReadOnlySpan<byte> row, RowFormat format, Span<float> destination)
    {
        destination.Clear();
        Accumulate(row, format, destination.Length, 1f, destination);
    }

    // FBGEMM FloatToFused8BitRowwiseQuantizedSBFloat: the inverse scale is 255 / (range + 1e-8), not
    // 1 / scale, so a constant row gets codes 0 instead of a division by zero; lrintf rounds half to even.
    private static void EncodeInt8(ReadOnlySpan<float> row, Span<byte> destination)
    {
        const float Epsilon = 1e-8f;
        int dim = row.Length;
        (float min, float max) = MinMax(row);
        float range = max - min;
        float inverse = 255f / (range + Epsilon);
        for (int i = 0; i < dim; i++)
        {
            destination[i] = (byte)Math.Clamp((int)MathF.Round((row[i] - min) * inverse, MidpointRounding.ToEven), 0, 255);
        }
        BinaryPrimitives.WriteSingleLittleEndian(destination[dim..], range / 255f);
        BinaryPrimitives.WriteSingleLittleEndian(destination[(dim + 4)..], min);
    }

    // FBGEMM FloatToFusedNBitRowwiseQuantizedSBHalf (4 bits): the minimum is rounded to fp16 before the
    // range is taken, and the scale is rounded to fp16 before its inverse, so codes agree with the stored
    // header; a zero or denormal-overflowing scale becomes 1 (every code is then 0).
    private static void EncodeInt4(ReadOnlySpan<float> row, Span<byte> destination)
    {
        int dim = row.Length;
        (float min, float max) = MinMax(row);
        Half biasH = (Half)min;
        float bias = (float)biasH;
        float range = max - bias;
        Half scaleH = range == 0 ? (Half)1f : (Half)(range / 15f);
        float scale = (float)scaleH;
        float inverse = scale == 0 ? 1f : 1f / scale;
        if (scale == 0 || float.IsInfinity(inverse))
        {
            scaleH = (Half)1f;
            inverse = 1f;
        }
        int packed = (dim + 1) / 2;
        destination[..packed].Clear();
        for (int i = 0; i < dim; i++)
        {
            int q = Math.Clamp((int)MathF.Round((row[i] - bias) * inverse, MidpointRounding.ToEven), 0, 15);
            destination[i >> 1] |= (byte)((i & 1) == 0 ? q : q << 4);
        }
        BinaryPrimitives.WriteHalfLittleEndian(destination[packed..], scaleH);
        BinaryPrimitives.WriteHalfLittleEndian(destination[(packed + 2)..], biasH);
    }

    private static (float Min, float Max) MinMax(ReadOnlySpan<float> row)
    {
        if (row.IsEmpty) return (0, 0);
        float min = row[0], max = row[0];
        foreach (float v in row)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
        return (min, max);
    }
}
