using System.Text.Json;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.Router.Http;

/// <summary>
/// Reads a KServe v2 (Open Inference Protocol) JSON infer request: tensor <c>dense</c> FP32 [B, F],
/// and per table <c>&lt;table&gt;.indices</c> INT64 [N], <c>&lt;table&gt;.offsets</c> INT64 [B + 1],
/// optional <c>&lt;table&gt;.weights</c> FP32 [N]. Tensor data may be flat (row-major) or nested,
/// as the protocol allows. Errors name the tensor, e.g. "inputs[C3.indices].data[5]".
/// </summary>
public static class KServeInferReader
{
    public static RankBatch Parse(ReadOnlyMemory<byte> utf8, DlrmSpec spec, int maxBatch, out string? id)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException("body", $"malformed JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}");
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidRequestException("body", "must be a JSON object with \"inputs\"");
            id = root.TryGetProperty("id", out JsonElement idElement) && idElement.ValueKind == JsonValueKind.String ? idElement.GetString() : null;
            if (!root.TryGetProperty("inputs", out JsonElement inputs) || inputs.ValueKind != JsonValueKind.Array)
            {
                throw new InvalidRequestException("inputs", "missing or not a list of tensors");
            }
            var tensors = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            int i = 0;
            foreach (JsonElement t in inputs.EnumerateArray())
            {
                string name = t.ValueKind == JsonValueKind.Object && t.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String
                    ? n.GetString()! : throw new InvalidRequestException($"inputs[{i}].name", "missing");
                if (!tensors.TryAdd(name, t)) throw new InvalidRequestException($"inputs[{name}]", "appears twice");
                i++;
            }

            var body = new RankBody(spec, maxBatch);
            int batch = -1;
            if (spec.DenseFeatures > 0 || tensors.ContainsKey("dense"))
            {
                JsonElement dense = Tensor(tensors, "dense");
                long[] shape = Shape(dense, "dense", "FP32", 2);
                if (shape[1] != spec.DenseFeatures) throw new InvalidRequestException("inputs[dense].shape", $"is [{shape[0]}, {shape[1]}], the model has {spec.DenseFeatures} dense features");
                if (shape[0] > maxBatch) throw new InvalidRequestException("inputs[dense].shape", $"more than {maxBatch} samples (the server's max batch)", 413);
                batch = (int)shape[0];
                float[] values = FloatData(dense, "dense", batch * spec.DenseFeatures);
                body.BeginDense();
                for (int b = 0; b < batch; b++) body.AddDenseRow(values.AsSpan(b * spec.DenseFeatures, spec.DenseFeatures), $"inputs[dense].data[{b}]");
            }
            foreach (TableSpec table in spec.Tables)
            {
                string idsName = table.Name + ".indices", offsetsName = table.Name + ".offsets", weightsName = table.Name + ".weights";
                JsonElement idsTensor = Tensor(tensors, idsName);
                long n = Shape(idsTensor, idsName, "INT64", 1)[0];
                long[] ids = LongData(idsTensor, idsName, n);
                JsonElement offsetsTensor = Tensor(tensors, offsetsName);
                long bagsPlusOne = Shape(offsetsTensor, offsetsName, "INT64", 1)[0];
                if (batch >= 0 && bagsPlusOne != batch + 1) throw new InvalidRequestException($"inputs[{offsetsName}].shape", $"is [{bagsPlusOne}], must be [B + 1] = [{batch + 1}]");
                if (bagsPlusOne < 2) throw new InvalidRequestException($"inputs[{offsetsName}].shape", "must be [B + 1] with at least one sample");
                if (bagsPlusOne - 1 > maxBatch) throw new InvalidRequestException($"inputs[{offsetsName}].shape", $"more than {maxBatch} samples (the server's max batch)", 413);
                batch = (int)(bagsPlusOne - 1);
                long[] offsets = LongData(offsetsTensor, offsetsName, bagsPlusOne);
                if (offsets[0] != 0) throw new InvalidRequestException($"inputs[{offsetsName}].data[0]", $"is {offsets[0]}, must be 0");
                if (offsets[^1] != n) throw new InvalidRequestException($"inputs[{offsetsName}].data[{batch}]", $"is {offsets[^1]}, must equal the {n} indices");
                int t = spec.TableIndex(table.Name);
                string field = $"inputs[{idsName}].data";
                body.BeginTable(t, field);
                for (int b = 0; b < batch; b++)
                {
                    if (offsets[b + 1] < offsets[b]) throw new InvalidRequestException($"inputs[{offsetsName}].data[{b + 1}]", $"is {offsets[b + 1]}, less than the previous offset {offsets[b]}");
                    for (long j = offsets[b]; j < offsets[b + 1]; j++)
                    {
                        if ((ulong)ids[j] >= (ulong)table.Rows) throw new InvalidRequestException($"{field}[{j}]", $"id {ids[j]} is outside the table's rows [0, {table.Rows})", 422);
                        body.AddId(t, ids[j], field, b, (int)(j - offsets[b]));
                    }
                    body.EndBag(t, field);
                }
                if (tensors.TryGetValue(weightsName, out JsonElement weightsTensor))
                {
                    long wn = Shape(weightsTensor, weightsName, "FP32", 1)[0];
                    if (wn != n) throw new InvalidRequestException($"inputs[{weightsName}].shape", $"is [{wn}], must match {idsName} [{n}]");
                    float[] weights = FloatData(weightsTensor, weightsName, n);
                    body.BeginWeights(t, $"inputs[{weightsName}]");
                    for (int b = 0; b < batch; b++)
                    {
                        for (long j = offsets[b]; j < offsets[b + 1]; j++) body.AddWeight(t, weights[j], $"inputs[{weightsName}].data", b, (int)(j - offsets[b]));
                        body.EndWeightBag(t, $"inputs[{weightsName}]");
                    }
                }
            }
            foreach (string name in tensors.Keys)
            {
                bool known = name == "dense" || spec.Tables.Any(t => name == t.Name + ".indices" || name == t.Name + ".offsets" || name == t.Name + ".weights");
                if (!known) throw new InvalidRequestException($"inputs[{name}]", "unknown tensor (see GET /v2/models/{name} for the inputs)");
            }
            return body.Assemble();
        }
    }

    private static JsonElement Tensor(Dictionary<string, JsonElement> tensors, string name) =>
        tensors.TryGetValue(name, out JsonElement t) ? t : throw new InvalidRequestException($"inputs[{name}]", "missing");

    private static long[] Shape(JsonElement tensor, string name, string datatype, int rank)
    {
        if (!tensor.TryGetProperty("datatype", out JsonElement dt) || dt.ValueKind != JsonValueKind.String || dt.GetString() != datatype)
        {
            throw new InvalidRequestException($"inputs[{name}].datatype", $"must be {datatype}");
        }
        if (!tensor.TryGetProperty("shape", out JsonElement shape) || shape.ValueKind != JsonValueKind.Array || shape.GetArrayLength() != rank)
        {
            throw new InvalidRequestException($"inputs[{name}].shape", $"must be a list of {rank} dimension(s)");
        }
        var dims = new long[rank];
        int i = 0;
        foreach (JsonElement d in shape.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0 || v > int.MaxValue) throw new InvalidRequestException($"inputs[{name}].shape[{i}]", "must be a non-negative integer");
            dims[i++] = v;
        }
        return dims;
    }

    private static float[] FloatData(JsonElement tensor, string name, long count)
    {
        var values = new List<float>((int)Math.Min(count, 1 << 20));
        Flatten(Data(tensor, name), name, values, static (e, field) =>
        {
            if (e.ValueKind != JsonValueKind.Number) throw new InvalidRequestException(field, "must be a number");
            float f = e.TryGetDouble(out double d) ? (float)d : float.NaN;
            return float.IsFinite(f) ? f : throw new InvalidRequestException(field, $"{e.GetRawText()} is not a finite float32");
        });
        return values.Count == count ? values.ToArray() : throw new InvalidRequestException($"inputs[{name}].data", $"has {values.Count} values, the shape says {count}");
    }

    private static long[] LongData(JsonElement tensor, string name, long count)
    {
        var values = new List<long>((int)Math.Min(count, 1 << 20));
        Flatten(Data(tensor, name), name, values, static (e, field) =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) ? v : throw new InvalidRequestException(field, "must be an integer"));
        return values.Count == count ? values.ToArray() : throw new InvalidRequestException($"inputs[{name}].data", $"has {values.Count} values, the shape says {count}");
    }

    private static JsonElement Data(JsonElement tensor, string name) =>
        tensor.TryGetProperty("data", out JsonElement data) && data.ValueKind == JsonValueKind.Array
            ? data : throw new InvalidRequestException($"inputs[{name}].data", "missing or not a list");

    private static void Flatten<T>(JsonElement list, string name, List<T> into, Func<JsonElement, string, T> read)
    {
        foreach (JsonElement e in list.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.Array) Flatten(e, name, into, read);
            else into.Add(read(e, $"inputs[{name}].data[{into.Count}]"));
        }
    }
}
