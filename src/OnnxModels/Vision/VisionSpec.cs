using System.Text.Json;
using Recsys.DenseCompute.Models;

namespace Recsys.OnnxModels.Vision;

public enum VisionKind
{
    Classification,
    Detection,
    Video,
}

public enum ImageLayout
{
    Nchw,
    Nhwc,
}

/// <summary>How an encoded image becomes the graph's input: resize to Height x Width, scale to [0, 1], subtract Mean, divide by Std per channel.</summary>
public sealed record Preprocessing(int? Height, int? Width, float[] Mean, float[] Std, ImageLayout Layout, long MaxPixels)
{
    public const long DefaultMaxPixels = 4096L * 4096;

    public static Preprocessing Default { get; } = new(null, null, [0f, 0f, 0f], [1f, 1f, 1f], ImageLayout.Nchw, DefaultMaxPixels);
}

/// <summary>Frame-based video (Park et al., 2018): Count frames sampled from the clip, each classified by Model, class scores averaged.</summary>
public sealed record FrameSampling(string Model, int Count);

/// <summary>A vision model.json: kind and ONNX file (or frame sampling over an image model), optional labels, preprocessing and batching.</summary>
public sealed record VisionSpec(
    string File,
    VisionKind Kind,
    string? OnnxPath,
    string? LabelsPath,
    Preprocessing Preprocessing,
    int MaxBatch,
    TimeSpan MaxDelay,
    FrameSampling? Frames)
{
    public const int DefaultMaxBatch = 8;
    public static readonly TimeSpan DefaultMaxDelay = TimeSpan.FromMilliseconds(2);

    private static readonly string[] TopFields = ["kind", "onnx", "labels", "preprocessing", "batching", "frames", "description"];
    private static readonly string[] PreprocessingFields = ["resize", "mean", "std", "layout", "max_pixels"];
    private static readonly string[] BatchingFields = ["max_batch", "max_delay_ms"];
    private static readonly string[] FrameFields = ["model", "count"];

    public static VisionSpec Parse(ModelSpec spec) => Parse(spec.Root, spec.File);

    /// <exception cref="ModelFileException">A field is missing, mistyped or out of range; the message names the file and field.</exception>
    public static VisionSpec Parse(JsonElement root, string file)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(file))!;
        RejectUnknown(root, file, "", TopFields);
        string kindName = String(root, file, "kind") ?? throw new ModelFileException(file, "kind", "missing (classification, detection, video)");
        VisionKind kind = kindName switch
        {
            "classification" => VisionKind.Classification,
            "detection" => VisionKind.Detection,
            "video" => VisionKind.Video,
            _ => throw new ModelFileException(file, "kind", $"'{kindName}' is not a vision kind (classification, detection, video)"),
        };

        FrameSampling? frames = null;
        if (Get(root, "frames") is { } f)
        {
            if (kind != VisionKind.Video) throw new ModelFileException(file, "frames", $"only a video model samples frames, this one is '{kindName}'");
            if (f.ValueKind != JsonValueKind.Object) throw new ModelFileException(file, "frames", "must be an object {\"model\": ..., \"count\": N}");
            RejectUnknown(f, file, "frames.", FrameFields);
            string model = String(f, file, "model", "frames.") ?? throw new ModelFileException(file, "frames.model", "missing (a classification model's name, or an .onnx file next to model.json)");
            int count = Int(f, file, "count", "frames.", min: 1, max: 1024) ?? throw new ModelFileException(file, "frames.count", "missing (frames sampled per clip)");
            frames = new FrameSampling(model, count);
        }

        string? onnx = String(root, file, "onnx");
        if (onnx is null && frames is null) throw new ModelFileException(file, "onnx", "missing (the ONNX file name, e.g. \"model.onnx\")");
        if (onnx is not null && frames is not null) throw new ModelFileException(file, "onnx", "given together with frames: a frame-based video model runs the image model named in frames.model");
        string? onnxPath = onnx is null ? null : ExistingFile(directory, onnx, file, "onnx");

        string? labels = String(root, file, "labels");
        string? labelsPath = labels is null ? null : ExistingFile(directory, labels, file, "labels");

        Preprocessing pre = Preprocessing.Default;
        if (Get(root, "preprocessing") is { } p)
        {
            if (p.ValueKind != JsonValueKind.Object) throw new ModelFileException(file, "preprocessing", "must be an object");
            RejectUnknown(p, file, "preprocessing.", PreprocessingFields);
            int? height = null, width = null;
            if (Get(p, "resize") is { } r)
            {
                int[] hw = IntArray(r, file, "preprocessing.resize", 1, 16384);
                if (hw.Length != 2) throw new ModelFileException(file, "preprocessing.resize", $"has {hw.Length} numbers, expected [height, width]");
                (height, width) = (hw[0], hw[1]);
            }
            float[] mean = Get(p, "mean") is { } m ? FloatArray(m, file, "preprocessing.mean") : pre.Mean;
            float[] std = Get(p, "std") is { } s ? FloatArray(s, file, "preprocessing.std") : pre.Std;
            if (mean.Length != 3) throw new ModelFileException(file, "preprocessing.mean", $"has {mean.Length} values, expected one per RGB channel (3)");
            if (std.Length != 3) throw new ModelFileException(file, "preprocessing.std", $"has {std.Length} values, expected one per RGB channel (3)");
            for (int i = 0; i < 3; i++)
            {
                if (!(std[i] > 0) || !float.IsFinite(std[i])) throw new ModelFileException(file, $"preprocessing.std[{i}]", $"is {std[i]}, must be positive");
                if (!float.IsFinite(mean[i])) throw new ModelFileException(file, $"preprocessing.mean[{i}]", "must be finite");
            }
            string layoutName = String(p, file, "layout", "preprocessing.") ?? "NCHW";
            ImageLayout layout = layoutName switch
            {
                "NCHW" => ImageLayout.Nchw,
                "NHWC" => ImageLayout.Nhwc,
                _ => throw new ModelFileException(file, "preprocessing.layout", $"'{layoutName}' is not one of NCHW, NHWC"),
            };
            long maxPixels = Long(p, file, "max_pixels", "preprocessing.", min: 1) ?? Preprocessing.DefaultMaxPixels;
            pre = new Preprocessing(height, width, mean, std, layout, maxPixels);
        }

        int maxBatch = DefaultMaxBatch;
        TimeSpan maxDelay = DefaultMaxDelay;
        if (Get(root, "batching") is { } b)
        {
            if (b.ValueKind != JsonValueKind.Object) throw new ModelFileException(file, "batching", "must be an object");
            RejectUnknown(b, file, "batching.", BatchingFields);
            maxBatch = Int(b, file, "max_batch", "batching.", min: 1, max: 4096) ?? maxBatch;
            if (Get(b, "max_delay_ms") is { } d)
            {
                if (d.ValueKind != JsonValueKind.Number || !d.TryGetDouble(out double ms) || !(ms >= 0) || ms > 10_000) throw new ModelFileException(file, "batching.max_delay_ms", "must be a number of milliseconds in [0, 10000]");
                maxDelay = TimeSpan.FromMilliseconds(ms);
            }
        }
        return new VisionSpec(file, kind, onnxPath, labelsPath, pre, maxBatch, maxDelay, frames);
    }

    private static string ExistingFile(string directory, string name, string file, string field)
    {
        if (Path.IsPathRooted(name) || name.Split('/', '\\').Contains("..")) throw new ModelFileException(file, field, $"'{name}' must be a file name inside the model's version directory");
        string path = Path.Combine(directory, name);
        return System.IO.File.Exists(path) ? path : throw new ModelFileException(file, field, $"'{name}' does not exist in {directory}");
    }

    private static void RejectUnknown(JsonElement obj, string file, string prefix, string[] known)
    {
        foreach (JsonProperty property in obj.EnumerateObject())
        {
            if (!known.Contains(property.Name)) throw new ModelFileException(file, prefix + property.Name, $"is not a known field (known: {string.Join(", ", known)})");
        }
    }

    private static JsonElement? Get(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static string? String(JsonElement obj, string file, string name, string prefix = "")
    {
        if (Get(obj, name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s ? s : throw new ModelFileException(file, prefix + name, "must be a non-empty string");
    }

    private static long? Long(JsonElement obj, string file, string name, string prefix, long min, long max = long.MaxValue)
    {
        if (Get(obj, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x)) throw new ModelFileException(file, prefix + name, "must be an integer");
        return x >= min && x <= max ? x : throw new ModelFileException(file, prefix + name, $"is {x}, must be in [{min}, {max}]");
    }

    private static int? Int(JsonElement obj, string file, string name, string prefix, int min, int max) => (int?)Long(obj, file, name, prefix, min, max);

    private static int[] IntArray(JsonElement v, string file, string field, int min, int max)
    {
        if (v.ValueKind != JsonValueKind.Array) throw new ModelFileException(file, field, "must be an array of integers");
        var result = new List<int>();
        int i = 0;
        foreach (JsonElement e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int x) || x < min || x > max) throw new ModelFileException(file, $"{field}[{i}]", $"must be an integer in [{min}, {max}]");
            result.Add(x);
            i++;
        }
        return [.. result];
    }

    private static float[] FloatArray(JsonElement v, string file, string field)
    {
        if (v.ValueKind != JsonValueKind.Array) throw new ModelFileException(file, field, "must be an array of numbers");
        var result = new List<float>();
        int i = 0;
        foreach (JsonElement e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number) throw new ModelFileException(file, $"{field}[{i}]", "must be a number");
            result.Add(e.GetSingle());
            i++;
        }
        return [.. result];
    }
}
