using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recsys.DenseCompute.Dlrm;
using Recsys.Router.Hosting;
using Recsys.Router.Scheduling;

namespace Recsys.Router.Translation;

/// <summary>
/// KServe v2 /infer on a seq2seq model's encoder, for raw use: INT64 src_ids [B, S] and
/// src_lengths [B] in, FP32 enc_out [B, S, H] and state [B, D] out. Only the tensor types this
/// graph takes are read here; a shared KServe tensor codec can replace this reader.
/// </summary>
internal static class EncoderInfer
{
    /// <summary>Rows one raw encoder call may carry.</summary>
    public const int MaxBatch = 256;

    public static string KServeType(TensorElementType type) => type switch
    {
        TensorElementType.Float => "FP32",
        TensorElementType.Int64 => "INT64",
        TensorElementType.Int32 => "INT32",
        TensorElementType.Bool => "BOOL",
        _ => type.ToString().ToUpperInvariant(),
    };

    public static Task ServeAsync(HttpContext context, TranslationWorkload model, ComputeScheduler scheduler, ServeOptions options) =>
        TranslationEndpoints.ServeAsync(context, model, (ctx, m, body, deadline, cancel) => InferAsync(ctx, m, scheduler, body, deadline, cancel));

    private static async Task InferAsync(HttpContext context, TranslationWorkload model, ComputeScheduler scheduler, ReadOnlyMemory<byte> body, long deadline, CancellationToken cancel)
    {
        (string? id, long[] ids, long[] lengths, int batch, int width) = Parse(body, model);
        (float[] encOut, float[] state) = await scheduler.RunAsync(model.Name, WorkClass.Interactive, deadline, () => model.Model.Graphs.Encode(ids, lengths, batch, width), cancel).WaitAsync(cancel).ConfigureAwait(false);
        int h = model.Model.Graphs.Hidden, d = model.Model.Graphs.StateWidth;
        HttpResponse response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "application/json";
        using (var writer = new Utf8JsonWriter(response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteString("model_name", model.Name);
            writer.WriteString("model_version", model.Version);
            if (id is not null) writer.WriteString("id", id);
            writer.WriteStartArray("outputs");
            WriteTensor(writer, "enc_out", [batch, width, h], encOut);
            WriteTensor(writer, "state", [batch, d], state);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        await response.BodyWriter.FlushAsync(cancel).ConfigureAwait(false);
    }

    private static void WriteTensor(Utf8JsonWriter writer, string name, int[] shape, float[] data)
    {
        writer.WriteStartObject();
        writer.WriteString("name", name);
        writer.WriteString("datatype", "FP32");
        writer.WriteStartArray("shape");
        foreach (int s in shape) writer.WriteNumberValue(s);
        writer.WriteEndArray();
        writer.WriteStartArray("data");
        foreach (float x in data) writer.WriteNumberValue(x);
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static (string? Id, long[] Ids, long[] Lengths, int Batch, int Width) Parse(ReadOnlyMemory<byte> body, TranslationWorkload model)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException("body", $"not valid JSON ({e.Message})");
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("inputs", out JsonElement inputs) || inputs.ValueKind != JsonValueKind.Array)
            {
                throw new InvalidRequestException("inputs", "missing or not a list of tensors");
            }
            string? id = root.TryGetProperty("id", out JsonElement idElement) && idElement.ValueKind == JsonValueKind.String ? idElement.GetString() : null;
            (long[] Shape, long[] Data)? srcIds = null, srcLengths = null;
            foreach (JsonElement t in inputs.EnumerateArray())
            {
                string name = t.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : throw new InvalidRequestException("inputs", "every tensor needs a name");
                if (name == "src_ids") srcIds = Int64Tensor(t, name, 2);
                else if (name == "src_lengths") srcLengths = Int64Tensor(t, name, 1);
                else throw new InvalidRequestException($"inputs[{name}]", "unknown input (the encoder takes src_ids and src_lengths)");
            }
            if (srcIds is not { } ids) throw new InvalidRequestException("inputs[src_ids]", "missing");
            if (srcLengths is not { } lengths) throw new InvalidRequestException("inputs[src_lengths]", "missing");
            long batch = ids.Shape[0], width = ids.Shape[1];
            if (batch < 1 || batch > MaxBatch) throw new InvalidRequestException("inputs[src_ids].shape", $"batch {batch} must be in [1, {MaxBatch}]");
            if (width < 1 || width > model.Model.Spec.MaxSourceLength) throw new InvalidRequestException("inputs[src_ids].shape", $"length {width} must be in [1, {model.Model.Spec.MaxSourceLength}] (max_source_length)", 422);
            if (lengths.Shape[0] != batch) throw new InvalidRequestException("inputs[src_lengths].shape", $"is [{lengths.Shape[0]}], src_ids has batch {batch}");
            int v = model.Model.Graphs.Vocabulary;
            for (int i = 0; i < ids.Data.Length; i++)
            {
                if ((ulong)ids.Data[i] >= (ulong)v) throw new InvalidRequestException($"inputs[src_ids].data[{i}]", $"token id {ids.Data[i]} is outside the vocabulary [0, {v})", 422);
            }
            for (int i = 0; i < lengths.Data.Length; i++)
            {
                if (lengths.Data[i] < 1 || lengths.Data[i] > width) throw new InvalidRequestException($"inputs[src_lengths].data[{i}]", $"is {lengths.Data[i]}, must be in [1, {width}]");
            }
            return (id, ids.Data, lengths.Data, (int)batch, (int)width);
        }
    }

    private static (long[] Shape, long[] Data) Int64Tensor(JsonElement t, string name, int rank)
    {
        string field = $"inputs[{name}]";
        if (!t.TryGetProperty("datatype", out JsonElement type) || type.ValueKind != JsonValueKind.String || type.GetString() != "INT64")
        {
            throw new InvalidRequestException(field + ".datatype", "must be INT64");
        }
        if (!t.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array || shapeElement.GetArrayLength() != rank)
        {
            throw new InvalidRequestException(field + ".shape", $"must be a list of {rank} dimensions");
        }
        var shape = new long[rank];
        long count = 1;
        int k = 0;
        foreach (JsonElement s in shapeElement.EnumerateArray())
        {
            if (s.ValueKind != JsonValueKind.Number || !s.TryGetInt64(out long dim) || dim < 0 || dim > 1 << 20) throw new InvalidRequestException(field + ".shape", "dimensions must be integers in [0, 2^20]");
            shape[k++] = dim;
            count *= dim;
        }
        if (count > 1 << 22) throw new InvalidRequestException(field + ".shape", $"{count} elements is too many", 413);
        if (!t.TryGetProperty("data", out JsonElement data)) throw new InvalidRequestException(field + ".data", "missing");
        var values = new List<long>((int)count);
        Flatten(data, values, field + ".data");
        if (values.Count != count) throw new InvalidRequestException(field + ".data", $"has {values.Count} values, shape [{string.Join(", ", shape)}] needs {count}");
        return (shape, [.. values]);
    }

    /// <summary>KServe allows the data flat or nested like the shape: both read row-major.</summary>
    private static void Flatten(JsonElement e, List<long> into, string field)
    {
        if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement x in e.EnumerateArray()) Flatten(x, into, field);
            return;
        }
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v)) throw new InvalidRequestException($"{field}[{into.Count}]", "must be an integer");
        into.Add(v);
    }
}
