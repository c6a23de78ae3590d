using MessagePack;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.Router.Serving;

namespace Recsys.Router.Http;

/// <summary>
/// The context-and-candidates form (see <see cref="ContextCandidatesReader"/>) as a MessagePack
/// map with the same keys and shapes as the JSON form: <c>context</c> {dense: [f...], sparse:
/// {table: [ids]}, weights: {table: [w...]}}, <c>candidates</c> {dense: [[f...]...], sparse:
/// {table: [[ids]...]}, weights: {table: [[w...]...]}}, optional <c>version</c>. Read into the
/// same <see cref="ContextSection"/>s, so the checks and the messages are the JSON form's.
/// </summary>
public static class MessagePackContextReader
{
    /// <summary>True when the top-level map has "context" or "candidates" (values are skipped, not parsed).</summary>
    public static bool IsContextForm(ReadOnlyMemory<byte> body, out string? version)
    {
        version = null;
        bool context = false;
        try
        {
            var reader = new MessagePackReader(body);
            if (reader.NextMessagePackType != MessagePackType.Map) return false;
            int fields = reader.ReadMapHeader();
            for (int i = 0; i < fields; i++)
            {
                if (reader.NextMessagePackType != MessagePackType.String) return false;
                string? key = reader.ReadString();
                context |= key is "context" or "candidates";
                if (key == "version" && reader.NextMessagePackType == MessagePackType.String) version = reader.ReadString();
                else if (key == "version" && reader.NextMessagePackType == MessagePackType.Integer && reader.ReadInt64() is var v) version = v >= 0 ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
                else reader.Skip();
            }
        }
        catch (Exception e) when (e is MessagePackSerializationException or EndOfStreamException or OverflowException)
        {
            // The full parser reports what is wrong, naming the field.
            return false;
        }
        return context;
    }

    public static RankInput Parse(ReadOnlyMemory<byte> body, DlrmSpec spec, int maxBatch)
    {
        ContextSection? context = null, candidates = null;
        try
        {
            var reader = new MessagePackReader(body);
            int fields = Map(ref reader, "body", "must be a MessagePack map");
            bool seenVersion = false;
            for (int i = 0; i < fields; i++)
            {
                string key = Key(ref reader, "body");
                switch (key)
                {
                    case "context":
                        if (context is not null) throw new InvalidRequestException(key, "appears twice");
                        context = Section(ref reader, key, candidates: false);
                        break;
                    case "candidates":
                        if (candidates is not null) throw new InvalidRequestException(key, "appears twice");
                        candidates = Section(ref reader, key, candidates: true);
                        break;
                    case "version":
                        if (seenVersion) throw new InvalidRequestException(key, "appears twice");
                        seenVersion = true;
                        VersionValue(ref reader);
                        break;
                    default:
                        throw new InvalidRequestException(key, "unknown field (expected context, candidates, version)");
                }
            }
            if (!reader.End) throw new InvalidRequestException("body", "has bytes after the map");
        }
        catch (Exception e) when (e is MessagePackSerializationException or EndOfStreamException)
        {
            throw new InvalidRequestException("body", $"malformed MessagePack ({e.Message})");
        }
        return ContextForm.Assemble(spec, maxBatch, context, candidates);
    }

    private static ContextSection Section(ref MessagePackReader reader, string name, bool candidates)
    {
        var section = new ContextSection(name);
        int fields = Map(ref reader, name, "must be a map with dense, sparse and weights");
        for (int i = 0; i < fields; i++)
        {
            string key = Key(ref reader, name);
            string field = $"{name}.{key}";
            switch (key)
            {
                case "dense":
                    if (!candidates)
                    {
                        section.SetDense([Floats(ref reader, field)], field);
                        break;
                    }
                    int rows = Array(ref reader, field, "must be a list of candidates, each a list of numbers");
                    var dense = new List<float[]>(rows);
                    for (int r = 0; r < rows; r++) dense.Add(Floats(ref reader, $"{field}[{r}]"));
                    section.SetDense(dense, field);
                    break;
                case "sparse":
                case "weights":
                    bool weights = key == "weights";
                    int tables = Map(ref reader, field, "must be a map keyed by table name");
                    for (int t = 0; t < tables; t++)
                    {
                        string table = Key(ref reader, field);
                        string tableField = $"{field}.{table}";
                        if (weights) section.AddWeights(table, candidates ? WeightBags(ref reader, tableField) : [Floats(ref reader, tableField)], tableField);
                        else section.AddTable(table, candidates ? IdBags(ref reader, tableField) : [Ids(ref reader, tableField)], tableField);
                    }
                    break;
                default:
                    throw new InvalidRequestException(field, "unknown field (expected dense, sparse, weights)");
            }
        }
        return section;
    }

    private static List<long[]> IdBags(ref MessagePackReader reader, string field)
    {
        int bags = Array(ref reader, field, "must be a list of bags, one list of ids per candidate");
        var list = new List<long[]>(bags);
        for (int b = 0; b < bags; b++) list.Add(Ids(ref reader, $"{field}[{b}]"));
        return list;
    }

    private static List<float[]> WeightBags(ref MessagePackReader reader, string field)
    {
        int bags = Array(ref reader, field, "must be a list of bags of weights, one per candidate");
        var list = new List<float[]>(bags);
        for (int b = 0; b < bags; b++) list.Add(Floats(ref reader, $"{field}[{b}]"));
        return list;
    }

    private static long[] Ids(ref MessagePackReader reader, string field)
    {
        var ids = new long[Array(ref reader, field, "must be a list of ids")];
        for (int j = 0; j < ids.Length; j++)
        {
            if (reader.NextMessagePackType != MessagePackType.Integer) throw new InvalidRequestException($"{field}[{j}]", "must be an integer id");
            try
            {
                ids[j] = reader.ReadInt64();
            }
            catch (OverflowException)
            {
                throw new InvalidRequestException($"{field}[{j}]", "id does not fit a signed 64-bit integer", 422);
            }
        }
        return ids;
    }

    private static float[] Floats(ref MessagePackReader reader, string field)
    {
        var values = new float[Array(ref reader, field, "must be a list of numbers")];
        for (int i = 0; i < values.Length; i++)
        {
            MessagePackType type = reader.NextMessagePackType;
            if (type is not (MessagePackType.Float or MessagePackType.Integer)) throw new InvalidRequestException($"{field}[{i}]", "must be a number");
            // float64 goes through double as in the plain MessagePack body, so both forms read the same float32.
            float f = type == MessagePackType.Float ? (float)reader.ReadDouble() : reader.ReadInt64();
            if (!float.IsFinite(f)) throw new InvalidRequestException($"{field}[{i}]", $"{f} is not a finite float32");
            values[i] = f;
        }
        return values;
    }

    private static int Map(ref MessagePackReader reader, string field, string problem) =>
        reader.NextMessagePackType == MessagePackType.Map ? reader.ReadMapHeader() : throw new InvalidRequestException(field, problem);

    private static int Array(ref MessagePackReader reader, string field, string problem) =>
        reader.NextMessagePackType == MessagePackType.Array ? reader.ReadArrayHeader() : throw new InvalidRequestException(field, problem);

    private static string Key(ref MessagePackReader reader, string section) =>
        reader.NextMessagePackType == MessagePackType.String ? reader.ReadString()! : throw new InvalidRequestException(section, "keys must be strings");

    private static string VersionValue(ref MessagePackReader reader) => reader.NextMessagePackType switch
    {
        MessagePackType.String => reader.ReadString()!,
        MessagePackType.Integer => reader.ReadInt64() is var v and >= 0 ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : throw new InvalidRequestException("version", "must be a string or a non-negative integer"),
        _ => throw new InvalidRequestException("version", "must be a string or a non-negative integer"),
    };
}
