using MessagePack;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.Router.Http;

/// <summary>
/// Reads the ranking body as MessagePack: the same map as the JSON body
/// (<c>dense</c>: array of float arrays, <c>sparse</c>/<c>weights</c>: map of table name to array of
/// arrays, optional <c>version</c>: string or integer), streamed straight into <see cref="RankBody"/>.
/// </summary>
public static class MessagePackRankReader
{
    public const string ContentType = "application/x-msgpack";

    /// <summary>Only the top-level "version", so the server can choose the spec before the full parse.</summary>
    public static string? ReadVersion(ReadOnlyMemory<byte> body)
    {
        try
        {
            var reader = new MessagePackReader(body);
            int fields = ReadMap(ref reader, "body", "must be a MessagePack map");
            string? version = null;
            for (int i = 0; i < fields; i++)
            {
                string key = ReadKey(ref reader, "body");
                if (key == "version") version = ReadVersionValue(ref reader);
                else reader.Skip();
            }
            return version;
        }
        catch (Exception e) when (e is MessagePackSerializationException or EndOfStreamException)
        {
            throw Malformed(e);
        }
    }

    public static RankBatch Parse(ReadOnlyMemory<byte> body, DlrmSpec spec, int maxBatch)
    {
        var state = new RankBody(spec, maxBatch);
        try
        {
            var reader = new MessagePackReader(body);
            int fields = ReadMap(ref reader, "body", "must be a MessagePack map");
            bool seenVersion = false;
            for (int i = 0; i < fields; i++)
            {
                string key = ReadKey(ref reader, "body");
                switch (key)
                {
                    case "dense":
                        ReadDense(ref reader, state);
                        break;
                    case "sparse":
                        ReadTables(ref reader, state, weights: false);
                        break;
                    case "weights":
                        ReadTables(ref reader, state, weights: true);
                        break;
                    case "version":
                        if (seenVersion) throw new InvalidRequestException("version", "appears twice");
                        seenVersion = true;
                        ReadVersionValue(ref reader);
                        break;
                    default:
                        throw new InvalidRequestException(key, "unknown field (expected dense, sparse, weights, version)");
                }
            }
            if (!reader.End) throw new InvalidRequestException("body", "has bytes after the map");
        }
        catch (Exception e) when (e is MessagePackSerializationException or EndOfStreamException)
        {
            throw Malformed(e);
        }
        return state.Assemble();
    }

    private static void ReadDense(ref MessagePackReader reader, RankBody state)
    {
        state.BeginDense();
        int rows = ReadArray(ref reader, "dense", "must be an array of samples, each an array of numbers");
        int width = state.Spec.DenseFeatures;
        Span<float> row = width <= 1024 ? stackalloc float[width] : new float[width];
        for (int r = 0; r < rows; r++)
        {
            string field = $"dense[{r}]";
            int n = ReadArray(ref reader, field, "must be an array of numbers");
            if (n != width) throw new InvalidRequestException(field, $"has {n} values, the model has {width} dense features");
            for (int i = 0; i < n; i++) row[i] = ReadFloat(ref reader, field, i);
            state.AddDenseRow(row, field);
        }
    }

    private static void ReadTables(ref MessagePackReader reader, RankBody state, bool weights)
    {
        string section = weights ? "weights" : "sparse";
        int tables = ReadMap(ref reader, section, "must be a map keyed by table name");
        for (int i = 0; i < tables; i++)
        {
            string name = ReadKey(ref reader, section);
            int t = state.TableIndex(section, name);
            string field = $"{section}.{name}";
            if (weights) state.BeginWeights(t, field);
            else state.BeginTable(t, field);
            int bags = ReadArray(ref reader, field, "must be an array of bags, one array per sample");
            for (int b = 0; b < bags; b++)
            {
                int n = ReadArray(ref reader, $"{field}[{b}]", weights ? "must be an array of numbers" : "must be an array of ids");
                for (int j = 0; j < n; j++)
                {
                    if (weights)
                    {
                        state.AddWeight(t, ReadFloat(ref reader, $"{field}[{b}]", j), field, b, j);
                    }
                    else
                    {
                        if (reader.NextMessagePackType != MessagePackType.Integer) throw new InvalidRequestException($"{field}[{b}][{j}]", "must be an integer id");
                        long id;
                        try
                        {
                            id = reader.ReadInt64();
                        }
                        catch (OverflowException)
                        {
                            throw new InvalidRequestException($"{field}[{b}][{j}]", "id does not fit a signed 64-bit integer", 422);
                        }
                        state.AddId(t, id, field, b, j);
                    }
                }
                if (weights) state.EndWeightBag(t, field);
                else state.EndBag(t, field);
            }
        }
    }

    private static float ReadFloat(ref MessagePackReader reader, string row, int index)
    {
        MessagePackType type = reader.NextMessagePackType;
        if (type is not (MessagePackType.Float or MessagePackType.Integer)) throw new InvalidRequestException($"{row}[{index}]", "must be a number");
        // float64 goes through double as Python and PyTorch convert, so 0.1 becomes the same float32 as in JSON.
        float f = type == MessagePackType.Float ? (float)reader.ReadDouble() : reader.ReadInt64();
        RankBody.CheckFinite(f, $"{row}[{index}]");
        return f;
    }

    private static int ReadMap(ref MessagePackReader reader, string field, string problem) =>
        reader.NextMessagePackType == MessagePackType.Map ? reader.ReadMapHeader() : throw new InvalidRequestException(field, problem);

    private static int ReadArray(ref MessagePackReader reader, string field, string problem) =>
        reader.NextMessagePackType == MessagePackType.Array ? reader.ReadArrayHeader() : throw new InvalidRequestException(field, problem);

    private static string ReadKey(ref MessagePackReader reader, string section) =>
        reader.NextMessagePackType == MessagePackType.String ? reader.ReadString()! : throw new InvalidRequestException(section, "keys must be strings");

    private static string ReadVersionValue(ref MessagePackReader reader) => reader.NextMessagePackType switch
    {
        MessagePackType.String => reader.ReadString()!,
        MessagePackType.Integer => reader.ReadInt64() is var v and >= 0 ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : throw new InvalidRequestException("version", "must be a string or a non-negative integer"),
        _ => throw new InvalidRequestException("version", "must be a string or a non-negative integer"),
    };

    private static InvalidRequestException Malformed(Exception e) => new("body", $"malformed MessagePack ({e.Message})");
}
