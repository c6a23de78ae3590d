using System.Text.Json;
using System.Text.Json.Nodes;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Vision;

namespace Recsys.Router.Http;

/// <summary>A parsed KServe v2 inference request: the tensors by input name, the outputs asked for (null: all).</summary>
internal sealed record KServeRequest(string? Id, IReadOnlyDictionary<string, HostTensor> Inputs, IReadOnlyList<string>? Outputs);

/// <summary>
/// The KServe v2 JSON tensor codec for graph-backed models (vision now, seq2seq encoders next):
/// reads {"id", "inputs": [{"name", "datatype", "shape", "data"}], "outputs": [{"name"}]} against
/// the graph's declared inputs and outputs, and writes {"model_name", "model_version", "id",
/// "outputs": [...]}. Data may be flat or nested row-major; FP32, INT64 and UINT8 as the graph
/// declares them. Every error names the field as inputs[name].part (inputs[3] before the name is known).
/// </summary>
internal static class KServeTensors
{
    /// <exception cref="InvalidRequestException">The body is not a well-formed request for these inputs and outputs.</exception>
    public static KServeRequest ReadRequest(ReadOnlyMemory<byte> body, IReadOnlyList<TensorSignature> inputs, IReadOnlyList<TensorSignature> outputs)
    {
        using JsonDocument doc = Parse(body);
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidRequestException("body", "must be a JSON object {\"inputs\": [...]}");
        string? id = null;
        if (root.TryGetProperty("id", out JsonElement idElement) && idElement.ValueKind != JsonValueKind.Null)
        {
            id = idElement.ValueKind == JsonValueKind.String ? idElement.GetString() : throw new InvalidRequestException("id", "must be a string");
        }
        if (!root.TryGetProperty("inputs", out JsonElement list) || list.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidRequestException("inputs", $"missing or not an array (this model takes {Describe(inputs)})");
        }
        var tensors = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        int index = 0;
        foreach (JsonElement item in list.EnumerateArray())
        {
            string at = $"inputs[{index}]";
            if (item.ValueKind != JsonValueKind.Object) throw new InvalidRequestException(at, "must be an object {\"name\", \"datatype\", \"shape\", \"data\"}");
            string name = item.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : throw new InvalidRequestException($"{at}.name", "missing or not a string");
            TensorSignature signature = inputs.FirstOrDefault(i => i.Name == name)
                ?? throw new InvalidRequestException($"{at}.name", $"'{name}' is not an input of this model (inputs: {Describe(inputs)})");
            string field = $"inputs[{name}]";
            if (tensors.ContainsKey(name)) throw new InvalidRequestException($"{field}.name", "appears twice");
            string datatype = item.TryGetProperty("datatype", out JsonElement d) && d.ValueKind == JsonValueKind.String ? d.GetString()! : throw new InvalidRequestException($"{field}.datatype", "missing or not a string");
            if (datatype != signature.Datatype) throw new InvalidRequestException($"{field}.datatype", $"is '{datatype}', input '{name}' is {signature.Datatype}");
            long[] shape = item.TryGetProperty("shape", out JsonElement s) ? Shape(s, $"{field}.shape") : throw new InvalidRequestException($"{field}.shape", "missing");
            if (!item.TryGetProperty("data", out JsonElement data)) throw new InvalidRequestException($"{field}.data", "missing");
            HostTensor tensor = Tensor(data, signature.Element, shape, $"{field}.data");
            CheckShape(signature, tensor.Shape, $"{field}.shape");
            tensors[name] = tensor;
            index++;
        }
        foreach (TensorSignature input in inputs)
        {
            if (!tensors.ContainsKey(input.Name)) throw new InvalidRequestException("inputs", $"input '{input.Name}' ({input.Datatype} {TensorSignature.Describe(input.Dims)}) is missing");
        }
        List<string>? wanted = null;
        if (root.TryGetProperty("outputs", out JsonElement outs) && outs.ValueKind != JsonValueKind.Null)
        {
            if (outs.ValueKind != JsonValueKind.Array) throw new InvalidRequestException("outputs", "must be an array of {\"name\"}");
            wanted = [];
            int o = 0;
            foreach (JsonElement item in outs.EnumerateArray())
            {
                string name = item.ValueKind == JsonValueKind.Object && item.TryGetProperty("name", out JsonElement on) && on.ValueKind == JsonValueKind.String
                    ? on.GetString()!
                    : throw new InvalidRequestException($"outputs[{o}].name", "missing or not a string");
                if (!outputs.Any(x => x.Name == name)) throw new InvalidRequestException($"outputs[{o}].name", $"'{name}' is not an output of this model (outputs: {Describe(outputs)})");
                if (!wanted.Contains(name)) wanted.Add(name);
                o++;
            }
            if (wanted.Count == 0) wanted = null;
        }
        return new KServeRequest(id, tensors, wanted);
    }

    /// <summary>The graph's declaration of one input refuses the request's shape (rank or a fixed dimension).</summary>
    public static void CheckShape(TensorSignature signature, long[] shape, string field)
    {
        if (shape.Length != signature.Rank) throw new InvalidRequestException(field, $"is {TensorSignature.Describe(shape)}, input '{signature.Name}' is {TensorSignature.Describe(signature.Dims)} (rank {signature.Rank})");
        for (int i = 0; i < shape.Length; i++)
        {
            if (signature.Dims[i] >= 0 && shape[i] != signature.Dims[i])
            {
                throw new InvalidRequestException(field, $"is {TensorSignature.Describe(shape)}, input '{signature.Name}' is {TensorSignature.Describe(signature.Dims)} (dimension {i} must be {signature.Dims[i]})");
            }
        }
    }

    /// <summary>
    /// Tensor data: flat with <paramref name="shape"/>, or nested arrays whose nesting gives the shape
    /// when <paramref name="shape"/> is null (ragged nesting is refused).
    /// </summary>
    public static HostTensor Tensor(JsonElement data, ElementKind element, long[]? shape, string field)
    {
        if (data.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, "must be an array of numbers");
        long[] nested = NestedShape(data, field);
        long count = HostTensor.ElementCount(nested);
        if (shape is not null)
        {
            long declared;
            try
            {
                declared = HostTensor.ElementCount(shape);
            }
            catch (OverflowException)
            {
                throw new InvalidRequestException(field, $"shape {TensorSignature.Describe(shape)} is too large");
            }
            if (declared != count) throw new InvalidRequestException(field, $"holds {count} values, shape {TensorSignature.Describe(shape)} needs {declared}");
        }
        long[] final = shape ?? nested;
        switch (element)
        {
            case ElementKind.Float32:
                {
                    var values = new float[count];
                    int at = 0;
                    Fill(data, field, ref at, (e, f, i) => values[i] = e.ValueKind == JsonValueKind.Number && e.TryGetSingle(out float v) && float.IsFinite(v) ? v : throw new InvalidRequestException(f, "must be a finite number"));
                    return HostTensor.Of(values, final);
                }
            case ElementKind.Int64:
                {
                    var values = new long[count];
                    int at = 0;
                    Fill(data, field, ref at, (e, f, i) => values[i] = e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) ? v : throw new InvalidRequestException(f, "must be an integer"));
                    return HostTensor.Of(values, final);
                }
            default:
                {
                    var values = new byte[count];
                    int at = 0;
                    Fill(data, field, ref at, (e, f, i) => values[i] = e.ValueKind == JsonValueKind.Number && e.TryGetByte(out byte v) ? v : throw new InvalidRequestException(f, "must be an integer in [0, 255]"));
                    return HostTensor.Of(values, final);
                }
        }
    }

    private delegate void Store(JsonElement element, string field, int index);

    private static void Fill(JsonElement array, string field, ref int at, Store store)
    {
        foreach (JsonElement e in array.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.Array) Fill(e, field, ref at, store);
            else
            {
                store(e, $"{field}[{at}]", at);
                at++;
            }
        }
    }

    /// <summary>The shape nested arrays describe: every array at one depth the same length, numbers only at the innermost depth.</summary>
    private static long[] NestedShape(JsonElement data, string field)
    {
        var shape = new List<long>();
        JsonElement probe = data;
        while (probe.ValueKind == JsonValueKind.Array)
        {
            shape.Add(probe.GetArrayLength());
            if (probe.GetArrayLength() == 0) break;
            probe = probe[0];
        }
        long[] dims = [.. shape];
        Verify(data, dims, 0, field);
        return dims;
    }

    private static void Verify(JsonElement array, long[] dims, int depth, string field)
    {
        if (array.GetArrayLength() != dims[depth]) throw new InvalidRequestException(field, $"is ragged: an array at depth {depth} has {array.GetArrayLength()} items, the first has {dims[depth]}");
        if (depth == dims.Length - 1)
        {
            foreach (JsonElement e in array.EnumerateArray())
            {
                if (e.ValueKind == JsonValueKind.Array) throw new InvalidRequestException(field, $"is ragged: arrays nested deeper than {dims.Length} levels");
            }
            return;
        }
        foreach (JsonElement e in array.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, $"is ragged: a number at depth {depth + 1}, arrays expected");
            Verify(e, dims, depth + 1, field);
        }
    }

    private static long[] Shape(JsonElement s, string field)
    {
        if (s.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, "must be an array of dimensions");
        var dims = new long[s.GetArrayLength()];
        int i = 0;
        foreach (JsonElement d in s.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 1) throw new InvalidRequestException($"{field}[{i}]", "must be a positive integer");
            dims[i++] = v;
        }
        return dims;
    }

    public static JsonDocument Parse(ReadOnlyMemory<byte> body)
    {
        try
        {
            return JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException("body", $"not valid JSON ({e.Message})");
        }
    }

    /// <summary>Writes the answer's "outputs" array, tensors in the order given.</summary>
    public static void WriteOutputs(Utf8JsonWriter writer, IEnumerable<(string Name, HostTensor Tensor)> outputs)
    {
        writer.WriteStartArray("outputs");
        foreach ((string name, HostTensor t) in outputs)
        {
            writer.WriteStartObject();
            writer.WriteString("name", name);
            writer.WriteString("datatype", t.Element switch { ElementKind.Float32 => "FP32", ElementKind.Int64 => "INT64", _ => "UINT8" });
            writer.WriteStartArray("shape");
            foreach (long d in t.Shape) writer.WriteNumberValue(d);
            writer.WriteEndArray();
            writer.WriteStartArray("data");
            switch (t.Data)
            {
                case float[] f:
                    foreach (float v in f) writer.WriteNumberValue(v);
                    break;
                case long[] l:
                    foreach (long v in l) writer.WriteNumberValue(v);
                    break;
                case byte[] b:
                    foreach (byte v in b) writer.WriteNumberValue(v);
                    break;
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }

    /// <summary>KServe v2 metadata entries: name, datatype, shape with -1 for open dimensions.</summary>
    public static JsonArray Metadata(IEnumerable<TensorSignature> tensors) =>
        [.. tensors.Select(t => (JsonNode)new JsonObject
        {
            ["name"] = t.Name,
            ["datatype"] = t.Datatype,
            ["shape"] = new JsonArray([.. t.Dims.Select(d => (JsonNode)d)]),
        })];

    private static string Describe(IEnumerable<TensorSignature> list) => string.Join(", ", list.Select(t => $"{t.Name} {t.Datatype} {TensorSignature.Describe(t.Dims)}"));
}
