using System.Text.Json;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.Router.Serving;

namespace Recsys.Router.Http;

/// <summary>
/// The context-and-candidates form of a ranking call: one user context scored against N candidates.
/// <code>
/// {"context":    {"dense": [f, ...], "sparse": {"C1": [id, ...]}, "weights": {"C1": [w, ...]}},
///  "candidates": {"dense": [[f, ...], ...], "sparse": {"C2": [[id, ...], ...]}, "weights": {...}},
///  "version": "1"}
/// </code>
/// Each table appears in exactly one of the two: a context table is one bag, looked up once and
/// broadcast to every candidate; a candidate table has one bag per candidate. A sample's dense
/// row is the context's dense values followed by its candidate's (either side may be absent, the
/// two widths must add up to the model's dense features).
/// </summary>
public static class ContextCandidatesReader
{
    /// <summary>True when the JSON body's top level has "context" or "candidates" (a cheap scan that skips values).</summary>
    public static bool IsContextForm(ReadOnlySpan<byte> utf8, out string? version)
    {
        version = null;
        bool context = false;
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 8 });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isVersion = reader.ValueTextEquals("version"u8);
                context |= reader.ValueTextEquals("context"u8) || reader.ValueTextEquals("candidates"u8);
                if (!reader.Read()) return false;
                if (isVersion && reader.TokenType == JsonTokenType.String) version = reader.GetString();
                else if (isVersion && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long v)) version = v.ToString(System.Globalization.CultureInfo.InvariantCulture);
                else reader.Skip();
            }
        }
        catch (JsonException)
        {
            // The real parser reports the malformed body with its position.
            return false;
        }
        return context;
    }

    /// <summary>The JSON form: read into <see cref="ContextSection"/>s, then checked against the model by <see cref="ContextForm.Assemble"/>.</summary>
    public static RankInput Parse(ReadOnlyMemory<byte> utf8, DlrmSpec spec, int maxBatch)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException("body", $"malformed JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}");
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            foreach (JsonProperty p in root.EnumerateObject())
            {
                if (p.Name is not ("context" or "candidates" or "version")) throw new InvalidRequestException(p.Name, "unknown field (expected context, candidates, version)");
            }
            ContextSection? context = Section(root, "context", candidates: false);
            ContextSection? candidates = Section(root, "candidates", candidates: true);
            return ContextForm.Assemble(spec, maxBatch, context, candidates);
        }
    }

    private static ContextSection? Section(JsonElement root, string name, bool candidates)
    {
        if (!root.TryGetProperty(name, out JsonElement e)) return null;
        if (e.ValueKind != JsonValueKind.Object) throw new InvalidRequestException(name, "must be an object with dense, sparse and weights");
        var section = new ContextSection(name);
        foreach (JsonProperty p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dense":
                    ReadDense(p.Value, section, candidates);
                    break;
                case "sparse":
                    foreach (JsonProperty table in Tables(p.Value, $"{name}.sparse"))
                    {
                        string field = $"{name}.sparse.{table.Name}";
                        section.AddTable(table.Name, candidates ? IdBags(table.Value, field) : [Ids(table.Value, field)], field);
                    }
                    break;
                case "weights":
                    foreach (JsonProperty table in Tables(p.Value, $"{name}.weights"))
                    {
                        string field = $"{name}.weights.{table.Name}";
                        section.AddWeights(table.Name, candidates ? WeightBags(table.Value, field) : [Floats(table.Value, field)], field);
                    }
                    break;
                default:
                    throw new InvalidRequestException($"{name}.{p.Name}", "unknown field (expected dense, sparse, weights)");
            }
        }
        return section;
    }

    private static void ReadDense(JsonElement dense, ContextSection section, bool candidates)
    {
        string field = $"{section.Name}.dense";
        if (!candidates)
        {
            section.SetDense([Floats(dense, field)], field);
            return;
        }
        if (dense.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, "must be a list of candidates, each a list of numbers");
        var rows = new List<float[]>(dense.GetArrayLength());
        foreach (JsonElement row in dense.EnumerateArray()) rows.Add(Floats(row, $"{field}[{rows.Count}]"));
        section.SetDense(rows, field);
    }

    private static JsonElement.ObjectEnumerator Tables(JsonElement map, string field) =>
        map.ValueKind == JsonValueKind.Object ? map.EnumerateObject() : throw new InvalidRequestException(field, "must be an object keyed by table name");

    private static List<long[]> IdBags(JsonElement list, string field)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, "must be a list of bags, one list of ids per candidate");
        var bags = new List<long[]>(list.GetArrayLength());
        foreach (JsonElement bag in list.EnumerateArray()) bags.Add(Ids(bag, $"{field}[{bags.Count}]"));
        return bags;
    }

    private static List<float[]> WeightBags(JsonElement list, string field)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, "must be a list of bags of weights, one per candidate");
        var bags = new List<float[]>(list.GetArrayLength());
        foreach (JsonElement bag in list.EnumerateArray()) bags.Add(Floats(bag, $"{field}[{bags.Count}]"));
        return bags;
    }

    private static long[] Ids(JsonElement list, string field)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, "must be a list of ids");
        var ids = new long[list.GetArrayLength()];
        int j = 0;
        foreach (JsonElement e in list.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long id)) throw new InvalidRequestException($"{field}[{j}]", "must be an integer id");
            ids[j++] = id;
        }
        return ids;
    }

    private static float[] Floats(JsonElement list, string field)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, "must be a list of numbers");
        var values = new float[list.GetArrayLength()];
        int i = 0;
        foreach (JsonElement e in list.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number) throw new InvalidRequestException($"{field}[{i}]", "must be a number");
            float f = e.TryGetDouble(out double d) ? (float)d : float.NaN;
            if (!float.IsFinite(f)) throw new InvalidRequestException($"{field}[{i}]", $"{e.GetRawText()} is not a finite float32");
            values[i++] = f;
        }
        return values;
    }
}
