using System.Buffers.Binary;

namespace Recsys.DenseCompute.Embeddings;

/// <summary>
/// Encodes fp32 rows into a row format and accumulates stored rows back into fp32.
/// Quantization is FBGEMM's row-wise min/max: scale = (max - min) / levels, bias = min.
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
                {
                    (float min, float max) = MinMax(row);
                    float scale = (max - min) / 255f;
                    float inv = scale > 0 ? 1f / scale : 0f;
                    for (int i = 0; i < dim; i++) destination[i] = (byte)Math.Clamp(MathF.Round((row[i] - min) * inv), 0, 255);
                    BinaryPrimitives.WriteSingleLittleEndian(destination[dim..], scale);
                    BinaryPrimitives.WriteSingleLittleEndian(destination[(dim + 4)..], min);
                    break;
                }
            case RowFormat.Int4:
                {
                    (float min, float max) = MinMax(row);
                    // FBGEMM rounds scale and bias to fp16 before quantizing so codes match the stored header.
                    Half scaleH = (Half)((max - min) / 15f);
                    Half biasH = (Half)min;
                    float scale = (float)scaleH, bias = (float)biasH;
                    float inv = scale > 0 ? 1f / scale : 0f;
                    int packed = (dim + 1) / 2;
                    destination[..packed].Clear();
                    for (int i = 0; i < dim; i++)
                    {
                        int q = (int)Math.Clamp(MathF.Round((row[i] - bias) * inv), 0, 15);
                        destination[i >> 1] |= (byte)((i & 1) == 0 ? q : q << 4);
                    }
                    BinaryPrimitives.WriteHalfLittleEndian(destination[packed..], scaleH);
                    BinaryPrimitives.WriteHalfLittleEndian(destination[(packed + 2)..], biasH);
                    break;
                }
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
