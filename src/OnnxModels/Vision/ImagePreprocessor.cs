using SkiaSharp;

namespace Recsys.OnnxModels.Vision;

/// <summary>
/// Encoded PNG/JPEG bytes to the graph's image tensor: decoded with SkiaSharp (8-bit RGBA, no colour
/// conversion), bilinear resize sampling pixel centres (no mipmaps, as F.interpolate with
/// align_corners=False), then (pixel/255 - mean)/std per channel in CHW or HWC order. The pixel
/// limit is checked from the header before any pixel is decoded, so a small file that claims a
/// huge image costs nothing.
/// </summary>
public sealed class ImagePreprocessor(Preprocessing preprocessing, int height, int width)
{
    public int Height { get; } = height;
    public int Width { get; } = width;

    /// <summary>A [1, 3, H, W] (or [1, H, W, 3]) tensor, and the image's own size.</summary>
    public HostTensor ToTensor(ReadOnlySpan<byte> encoded, out int originalWidth, out int originalHeight, string field = "image")
    {
        if (encoded.IsEmpty) throw new VisionInputException(field, "is empty; send PNG or JPEG bytes");
        using SKData data = SKData.CreateCopy(encoded);
        using SKCodec? codec = SKCodec.Create(data);
        if (codec is null) throw new VisionInputException(field, "is not an image (send PNG or JPEG bytes)");
        if (codec.EncodedFormat is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg))
        {
            throw new VisionInputException(field, $"is {codec.EncodedFormat}; send PNG or JPEG", 415);
        }
        SKImageInfo header = codec.Info;
        long pixels = (long)header.Width * header.Height;
        if (pixels > preprocessing.MaxPixels)
        {
            throw new VisionInputException(field, $"is {header.Width}x{header.Height} = {pixels} pixels, over this model's limit of {preprocessing.MaxPixels}", 413);
        }
        var rgba = new SKImageInfo(header.Width, header.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using SKBitmap? decoded = SKBitmap.Decode(codec, rgba);
        if (decoded is null) throw new VisionInputException(field, $"is a {codec.EncodedFormat} whose pixels do not decode (truncated or corrupt)");
        originalWidth = header.Width;
        originalHeight = header.Height;
        if (header.Width == Width && header.Height == Height) return Normalize(decoded);
        using SKBitmap? resized = decoded.Resize(new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None));
        if (resized is null) throw new InvalidOperationException($"SkiaSharp could not resize {header.Width}x{header.Height} to {Width}x{Height}");
        return Normalize(resized);
    }

    private HostTensor Normalize(SKBitmap bitmap)
    {
        ReadOnlySpan<byte> px = bitmap.GetPixelSpan();
        int plane = Height * Width;
        var result = new float[3 * plane];
        float[] mean = preprocessing.Mean, std = preprocessing.Std;
        bool chw = preprocessing.Layout == ImageLayout.Nchw;
        int rowBytes = bitmap.RowBytes;
        for (int y = 0; y < Height; y++)
        {
            ReadOnlySpan<byte> row = px.Slice(y * rowBytes, Width * 4);
            for (int x = 0; x < Width; x++)
            {
                int at = y * Width + x;
                for (int c = 0; c < 3; c++)
                {
                    float v = (row[x * 4 + c] / 255f - mean[c]) / std[c];
                    result[chw ? c * plane + at : at * 3 + c] = v;
                }
            }
        }
        return chw ? HostTensor.Of(result, 1, 3, Height, Width) : HostTensor.Of(result, 1, Height, Width, 3);
    }
}
