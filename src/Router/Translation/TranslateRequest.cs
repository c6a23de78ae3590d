using System.Text.Json;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Seq2Seq;

namespace Recsys.Router.Translation;

/// <summary>
/// The body of POST /v1/models/{name}/translate: {"text": "..."} or {"ids": [...]}, with optional
/// "beam", "max_length", "n_best", "length_penalty". Checked against the model; errors name the field.
/// </summary>
internal sealed record TranslateRequest(int[] Source, DecodeOptions Options)
{
    private static readonly string[] Fields = ["text", "ids", "beam", "max_length", "n_best", "length_penalty"];

    public static TranslateRequest Parse(ReadOnlyMemory<byte> body, Seq2SeqModel model)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException("body", $"not valid JSON ({e.Message})");
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidRequestException("body", "must be a JSON object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty p in root.EnumerateObject())
            {
                if (Array.IndexOf(Fields, p.Name) < 0) throw new InvalidRequestException(p.Name, $"unknown field (fields: {string.Join(", ", Fields)})");
                if (!seen.Add(p.Name)) throw new InvalidRequestException(p.Name, "appears twice");
            }
            bool hasText = root.TryGetProperty("text", out JsonElement text) && text.ValueKind != JsonValueKind.Null;
            bool hasIds = root.TryGetProperty("ids", out JsonElement ids) && ids.ValueKind != JsonValueKind.Null;
            if (hasText == hasIds) throw new InvalidRequestException(hasText ? "ids" : "text", hasText ? "give either text or ids, not both" : "missing: give \"text\" or \"ids\"");

            DecodeOptions options = model.Options(Int(root, "beam"), Int(root, "max_length"), Int(root, "n_best"), Number(root, "length_penalty"));
            int[] source;
            if (hasText)
            {
                if (text.ValueKind != JsonValueKind.String) throw new InvalidRequestException("text", "must be a string");
                source = model.EncodeText(text.GetString()!);
            }
            else
            {
                source = Ids(ids);
                model.CheckSource(source);
            }
            return new TranslateRequest(source, options);
        }
    }

    private static int[] Ids(JsonElement ids)
    {
        if (ids.ValueKind != JsonValueKind.Array) throw new InvalidRequestException("ids", "must be a list of token ids");
        var result = new int[ids.GetArrayLength()];
        int i = 0;
        foreach (JsonElement e in ids.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long id)) throw new InvalidRequestException($"ids[{i}]", "must be an integer token id");
            // Out-of-range ids become -1 so the model's check reports them with their index.
            result[i++] = id is >= 0 and <= int.MaxValue ? (int)id : -1;
        }
        return result;
    }

    private static int? Int(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x)) throw new InvalidRequestException(name, "must be an integer");
        return (int)Math.Clamp(x, int.MinValue, int.MaxValue);
    }

    private static double? Number(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw new InvalidRequestException(name, "must be a number");
    }
}
