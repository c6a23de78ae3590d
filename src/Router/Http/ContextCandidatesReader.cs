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
            JsonElement context = Section(root, "context");
            JsonElement candidates = Section(root, "candidates");

            float[] contextDense = context.TryGetProperty("dense", out JsonElement cd) ? Floats(cd, "context.dense") : [];
            int candidateWidth = spec.DenseFeatures - contextDense.Length;
            if (candidateWidth < 0) throw new InvalidRequestException("context.dense", $"has {contextDense.Length} values, the model has {spec.DenseFeatures} dense features");

            var tables = new SparseFeature?[spec.Tables.Length];
            var broadcast = new bool[spec.Tables.Length];
            int n = -1;
            string nFrom = "";
            List<float[]>? candidateDense = null;
            if (candidates.TryGetProperty("dense", out JsonElement dd))
            {
                if (dd.ValueKind != JsonValueKind.Array) throw new InvalidRequestException("candidates.dense", "must be a list of candidates, each a list of numbers");
                candidateDense = [];
                int i = 0;
                foreach (JsonElement row in dd.EnumerateArray())
                {
                    float[] values = Floats(row, $"candidates.dense[{i}]");
                    if (values.Length != candidateWidth) throw new InvalidRequestException($"candidates.dense[{i}]", $"has {values.Length} values; with {contextDense.Length} from context.dense the model needs {candidateWidth}");
                    candidateDense.Add(values);
                    i++;
                }
                n = candidateDense.Count;
                nFrom = "candidates.dense";
            }
            else if (candidateWidth > 0)
            {
                throw new InvalidRequestException("candidates.dense", $"missing: context.dense has {contextDense.Length} of the model's {spec.DenseFeatures} dense features");
            }

            ReadTables(context, "context", spec, tables, broadcast, ref n, ref nFrom, contextSide: true);
            ReadTables(candidates, "candidates", spec, tables, broadcast, ref n, ref nFrom, contextSide: false);
            for (int t = 0; t < tables.Length; t++)
            {
                if (tables[t] is null) throw new InvalidRequestException($"candidates.sparse.{spec.Tables[t].Name}", "missing from both context.sparse and candidates.sparse");
            }
            if (n <= 0) throw new InvalidRequestException("candidates", "no candidates (send at least one)");
            if (n > maxBatch) throw new InvalidRequestException("candidates", $"more than {maxBatch} candidates (the server's max batch)", 413);

            var dense = new float[n * spec.DenseFeatures];
            for (int s = 0; s < n; s++)
            {
                Span<float> row = dense.AsSpan(s * spec.DenseFeatures, spec.DenseFeatures);
                contextDense.CopyTo(row);
                candidateDense?[s].CopyTo(row[contextDense.Length..]);
            }
            return new RankInput(n, dense, tables!, broadcast);
        }
    }

    private static JsonElement Section(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out JsonElement e)) return default;
        return e.ValueKind == JsonValueKind.Object ? e : throw new InvalidRequestException(name, "must be an object with dense, sparse and weights");
    }

    private static void ReadTables(JsonElement section, string sectionName, DlrmSpec spec, SparseFeature?[] tables, bool[] broadcast, ref int n, ref string nFrom, bool contextSide)
    {
        if (section.ValueKind != JsonValueKind.Object) return;
        JsonElement weights = default;
        if (section.TryGetProperty("weights", out JsonElement w) && w.ValueKind != JsonValueKind.Object) throw new InvalidRequestException($"{sectionName}.weights", "must be an object keyed by table name");
        else weights = w;
        foreach (JsonProperty p in section.EnumerateObject())
        {
            if (p.Name is not ("dense" or "sparse" or "weights")) throw new InvalidRequestException($"{sectionName}.{p.Name}", "unknown field (expected dense, sparse, weights)");
        }
        if (!section.TryGetProperty("sparse", out JsonElement sparse)) return;
        if (sparse.ValueKind != JsonValueKind.Object) throw new InvalidRequestException($"{sectionName}.sparse", "must be an object keyed by table name");
        foreach (JsonProperty table in sparse.EnumerateObject())
        {
            string field = $"{sectionName}.sparse.{table.Name}";
            int t = spec.TableIndex(table.Name);
            if (t < 0) throw new InvalidRequestException(field, $"unknown table (the model has {string.Join(", ", spec.Tables.Select(s => s.Name))})");
            if (tables[t] is not null) throw new InvalidRequestException(field, "given in both context and candidates (or twice)");
            JsonElement? tableWeights = weights.ValueKind == JsonValueKind.Object && weights.TryGetProperty(table.Name, out JsonElement tw) ? tw : null;
            if (tableWeights is not null && spec.Tables[t].Pooling != DenseCompute.Embeddings.Pooling.Sum)
            {
                throw new InvalidRequestException($"{sectionName}.weights.{table.Name}", "per-sample weights need sum pooling (as PyTorch's EmbeddingBag), this table pools by mean");
            }
            if (contextSide)
            {
                long[] ids = Ids(table.Value, field, spec.Tables[t].Rows);
                float[]? bagWeights = tableWeights is { } cw ? Floats(cw, $"{sectionName}.weights.{table.Name}") : null;
                if (bagWeights is not null && bagWeights.Length != ids.Length) throw new InvalidRequestException($"{sectionName}.weights.{table.Name}", $"has {bagWeights.Length} weights for {ids.Length} ids");
                tables[t] = new SparseFeature(ids, [0, ids.Length], bagWeights);
                broadcast[t] = true;
                continue;
            }
            if (table.Value.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, "must be a list of bags, one list of ids per candidate");
            int bags = table.Value.GetArrayLength();
            if (n < 0)
            {
                n = bags;
                nFrom = field;
            }
            else if (bags != n)
            {
                throw new InvalidRequestException(field, $"has {bags} bags but {nFrom} has {n} candidates");
            }
            var allIds = new List<long>();
            var offsets = new int[bags + 1];
            List<float>? allWeights = tableWeights is null ? null : [];
            if (tableWeights is { } tws && (tws.ValueKind != JsonValueKind.Array || tws.GetArrayLength() != bags))
            {
                throw new InvalidRequestException($"{sectionName}.weights.{table.Name}", $"must be a list of {bags} bags like {field}");
            }
            int b = 0;
            foreach (JsonElement bag in table.Value.EnumerateArray())
            {
                long[] ids = Ids(bag, $"{field}[{b}]", spec.Tables[t].Rows);
                allIds.AddRange(ids);
                offsets[b + 1] = allIds.Count;
                if (allWeights is not null)
                {
                    float[] ws = Floats(tableWeights!.Value[b], $"{sectionName}.weights.{table.Name}[{b}]");
                    if (ws.Length != ids.Length) throw new InvalidRequestException($"{sectionName}.weights.{table.Name}[{b}]", $"has {ws.Length} weights for {ids.Length} ids");
                    allWeights.AddRange(ws);
                }
                b++;
            }
            tables[t] = new SparseFeature([.. allIds], offsets, allWeights?.ToArray());
        }
    }

    private static long[] Ids(JsonElement list, string field, long rows)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new InvalidRequestException(field, "must be a list of ids");
        var ids = new long[list.GetArrayLength()];
        int j = 0;
        foreach (JsonElement e in list.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long id)) throw new InvalidRequestException($"{field}[{j}]", "must be an integer id");
            if ((ulong)id >= (ulong)rows) throw new InvalidRequestException($"{field}[{j}]", $"id {id} is outside the table's rows [0, {rows})", 422);
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
