using System.Buffers;
using System.Text.Json;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Dlrm;

/// <summary>
/// The single reader of the ranking body
/// <c>{"dense": [[f, ...], ...], "sparse": {"&lt;table&gt;": [[id, ...], ...]}, "weights": {"&lt;table&gt;": [[w, ...], ...]}, "version": "3"}</c>
/// (HTTP and `recsys rank` both use it). One forward pass of a <see cref="Utf8JsonReader"/>, no
/// DOM; everything is validated against the model before a kernel sees it.
/// Errors are <see cref="InvalidRequestException"/> naming the field (e.g. "sparse.C3[2][5]"):
/// 400 for malformed or mis-shaped bodies, 413 when the batch exceeds <see cref="MaxBatch"/>,
/// 422 for ids outside a table's rows (well-formed, but not valid for this model).
/// </summary>
public sealed class RankRequestJson
{
    public const int DefaultMaxBatch = 4096;

    public RankRequestJson(DlrmSpec spec, int maxBatch = DefaultMaxBatch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        Spec = spec;
        MaxBatch = maxBatch;
    }

    public DlrmSpec Spec { get; }

    /// <summary>Largest accepted batch; a bigger one is refused with 413 before its ids are read.</summary>
    public int MaxBatch { get; }

    private static readonly JsonReaderOptions ReaderOptions = new() { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 };

    public RankBatch Parse(ReadOnlySpan<byte> utf8) => Parse(utf8, out _);

    /// <param name="version">The body's optional "version" (a string or an integer), null when absent.</param>
    public RankBatch Parse(ReadOnlySpan<byte> utf8, out string? version)
    {
        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        return ParseReader(ref reader, out version);
    }

    /// <summary>The same for a body still in the segments a pipe delivered it in (no copy into one buffer).</summary>
    public RankBatch Parse(ReadOnlySequence<byte> utf8, out string? version)
    {
        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        return ParseReader(ref reader, out version);
    }

    /// <summary>Both body shapes end here, so a reader error becomes the same 400 naming the position.</summary>
    private RankBatch ParseReader(ref Utf8JsonReader reader, out string? version)
    {
        try
        {
            return ParseBody(ref reader, out version);
        }
        catch (JsonException e)
        {
            throw Malformed(e);
        }
    }

    /// <summary>
    /// Reads only the top-level "version" so a server can pick the model version — and with it
    /// the spec to parse against — before parsing the rest.
    /// </summary>
    public static string? ReadVersion(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        return ReadVersion(ref reader);
    }

    public static string? ReadVersion(ReadOnlySequence<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        return ReadVersion(ref reader);
    }

    private static string? ReadVersion(ref Utf8JsonReader reader)
    {
        try
        {
            Expect(ref reader, JsonTokenType.StartObject, "body", "must be a JSON object");
            string? version = null;
            while (Next(ref reader) == JsonTokenType.PropertyName)
            {
                bool isVersion = reader.ValueTextEquals("version"u8);
                Next(ref reader);
                if (isVersion) version = ReadVersionValue(ref reader);
                else reader.Skip();
            }
            return version;
        }
        catch (JsonException e)
        {
            throw Malformed(e);
        }
    }

    private RankBatch ParseBody(ref Utf8JsonReader reader, out string? version)
    {
        version = null;
        Expect(ref reader, JsonTokenType.StartObject, "body", "must be a JSON object");
        int tables = Spec.Tables.Length;
        var state = new BodyState(tables);
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("dense"u8))
            {
                Once(ref state.SeenDense, "dense");
                Next(ref reader);
                state.Dense = ReadDense(ref reader, out state.DenseRows);
            }
            else if (reader.ValueTextEquals("sparse"u8))
            {
                Once(ref state.SeenSparse, "sparse");
                Next(ref reader);
                ReadTableMap(ref reader, "sparse", state, weights: false);
            }
            else if (reader.ValueTextEquals("weights"u8))
            {
                Once(ref state.SeenWeights, "weights");
                Next(ref reader);
                ReadTableMap(ref reader, "weights", state, weights: true);
            }
            else if (reader.ValueTextEquals("version"u8))
            {
                Once(ref state.SeenVersion, "version");
                Next(ref reader);
                version = ReadVersionValue(ref reader);
            }
            else
            {
                throw new InvalidRequestException(reader.GetString() ?? "body", "unknown field (expected dense, sparse, weights, version)");
            }
        }
        // Reading to the end makes trailing garbage after the object a malformed body too.
        while (reader.Read())
        {
        }
        return Assemble(state);
    }

    private RankBatch Assemble(BodyState state)
    {
        if (!state.SeenSparse && Spec.Tables.Length > 0) throw new InvalidRequestException("sparse", "missing");
        if (!state.SeenDense && Spec.DenseFeatures > 0) throw new InvalidRequestException("dense", "missing");
        int batch = -1;
        string batchFrom = "";
        if (state.SeenDense)
        {
            batch = state.DenseRows;
            batchFrom = "dense";
        }
        var sparse = new SparseFeature[Spec.Tables.Length];
        for (int t = 0; t < Spec.Tables.Length; t++)
        {
            TableSpec table = Spec.Tables[t];
            TableInput? input = state.Tables[t] ?? throw new InvalidRequestException($"sparse.{table.Name}", "missing (every table of the model needs a list of bags, empty bags are allowed)");
            if (batch < 0)
            {
                batch = input.Bags;
                batchFrom = $"sparse.{table.Name}";
            }
            else if (input.Bags != batch)
            {
                throw new InvalidRequestException($"sparse.{table.Name}", $"has {input.Bags} bags but {batchFrom} has {batch} samples");
            }
            float[]? weights = null;
            if (state.Weights[t] is { } w)
            {
                if (w.Bags != input.Bags) throw new InvalidRequestException($"weights.{table.Name}", $"has {w.Bags} bags but sparse.{table.Name} has {input.Bags}");
                for (int b = 0; b < input.Bags; b++)
                {
                    int ids = input.Offsets[b + 1] - input.Offsets[b], ws = w.Offsets[b + 1] - w.Offsets[b];
                    if (ids != ws) throw new InvalidRequestException($"weights.{table.Name}[{b}]", $"has {ws} weights for {ids} ids");
                }
                weights = w.Floats.ToArray();
            }
            sparse[t] = new SparseFeature(input.Ids.ToArray(), input.Offsets.ToArray(), weights);
        }
        if (batch <= 0) throw new InvalidRequestException(batchFrom.Length > 0 ? batchFrom : "dense", "the batch is empty (send at least one sample)");
        float[] dense = state.Dense ?? new float[batch * Spec.DenseFeatures];
        return new RankBatch(batch, dense, sparse);
    }

    private float[] ReadDense(ref Utf8JsonReader reader, out int rows)
    {
        ExpectCurrent(ref reader, JsonTokenType.StartArray, "dense", "must be a list of samples, each a list of numbers");
        int width = Spec.DenseFeatures;
        var values = new List<float>(width * 16);
        rows = 0;
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            CheckBatch(rows, "dense");
            ExpectCurrent(ref reader, JsonTokenType.StartArray, $"dense[{rows}]", "must be a list of numbers");
            int n = 0;
            while (Next(ref reader) != JsonTokenType.EndArray)
            {
                if (n >= width) throw new InvalidRequestException($"dense[{rows}]", $"has more than {width} values, the model has {width} dense features");
                values.Add(ReadFloat(ref reader, $"dense[{rows}][{n}]"));
                n++;
            }
            if (n != width) throw new InvalidRequestException($"dense[{rows}]", $"has {n} values, the model has {width} dense features");
            rows++;
        }
        return values.ToArray();
    }

    private void ReadTableMap(ref Utf8JsonReader reader, string section, BodyState state, bool weights)
    {
        ExpectCurrent(ref reader, JsonTokenType.StartObject, section, "must be an object keyed by table name");
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            string name = reader.GetString()!;
            int t = Spec.TableIndex(name);
            if (t < 0) throw new InvalidRequestException($"{section}.{name}", $"unknown table (the model has {string.Join(", ", Spec.Tables.Select(s => s.Name))})");
            TableSpec table = Spec.Tables[t];
            Next(ref reader);
            if (weights)
            {
                if (state.Weights[t] != null) throw new InvalidRequestException($"{section}.{name}", "appears twice");
                if (table.Pooling != Pooling.Sum) throw new InvalidRequestException($"{section}.{name}", "per-sample weights need sum pooling (as PyTorch's EmbeddingBag), this table pools by mean");
                state.Weights[t] = ReadWeights(ref reader, $"{section}.{name}");
            }
            else
            {
                if (state.Tables[t] != null) throw new InvalidRequestException($"{section}.{name}", "appears twice");
                state.Tables[t] = ReadBags(ref reader, $"{section}.{name}", table.Rows);
            }
        }
    }

    private TableInput ReadBags(ref Utf8JsonReader reader, string field, long rows)
    {
        ExpectCurrent(ref reader, JsonTokenType.StartArray, field, "must be a list of bags, one list of ids per sample");
        var input = new TableInput();
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            int b = input.Bags;
            CheckBatch(b, field);
            ExpectCurrent(ref reader, JsonTokenType.StartArray, $"{field}[{b}]", "must be a list of ids");
            int j = 0;
            while (Next(ref reader) != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long id))
                {
                    throw new InvalidRequestException($"{field}[{b}][{j}]", "must be an integer id");
                }
                if ((ulong)id >= (ulong)rows) throw new InvalidRequestException($"{field}[{b}][{j}]", $"id {id} is outside the table's rows [0, {rows})", 422);
                input.Ids.Add(id);
                j++;
            }
            input.Offsets.Add(input.Ids.Count);
        }
        return input;
    }

    private WeightsInput ReadWeights(ref Utf8JsonReader reader, string field)
    {
        ExpectCurrent(ref reader, JsonTokenType.StartArray, field, "must be a list of bags, one list of weights per sample");
        var input = new WeightsInput();
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            int b = input.Bags;
            CheckBatch(b, field);
            ExpectCurrent(ref reader, JsonTokenType.StartArray, $"{field}[{b}]", "must be a list of numbers");
            int j = 0;
            while (Next(ref reader) != JsonTokenType.EndArray)
            {
                input.Floats.Add(ReadFloat(ref reader, $"{field}[{b}][{j}]"));
                j++;
            }
            input.Offsets.Add(input.Floats.Count);
        }
        return input;
    }

    private void CheckBatch(int index, string field)
    {
        if (index >= MaxBatch) throw new InvalidRequestException(field, $"more than {MaxBatch} samples (the server's max batch)", 413);
    }

    private static float ReadFloat(ref Utf8JsonReader reader, string field)
    {
        // Through double, as Python and PyTorch convert JSON numbers, so "0.1" becomes the same float32.
        if (reader.TokenType != JsonTokenType.Number) throw new InvalidRequestException(field, "must be a number");
        float f = reader.TryGetDouble(out double d) ? (float)d : float.NaN;
        return float.IsFinite(f) ? f : throw new InvalidRequestException(field, $"{RawText(ref reader)} is not a finite float32");
    }

    private static string RawText(ref Utf8JsonReader reader) =>
        System.Text.Encoding.UTF8.GetString(reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan);

    private static string ReadVersionValue(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString()!,
        JsonTokenType.Number when reader.TryGetInt64(out long v) && v >= 0 => v.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => throw new InvalidRequestException("version", "must be a string or a non-negative integer"),
    };

    private static JsonTokenType Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read()) throw new InvalidRequestException("body", "ends early (truncated JSON)");
        return reader.TokenType;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string field, string problem)
    {
        Next(ref reader);
        ExpectCurrent(ref reader, type, field, problem);
    }

    private static void ExpectCurrent(ref Utf8JsonReader reader, JsonTokenType type, string field, string problem)
    {
        if (reader.TokenType != type) throw new InvalidRequestException(field, problem);
    }

    private static void Once(ref bool seen, string field)
    {
        if (seen) throw new InvalidRequestException(field, "appears twice");
        seen = true;
    }

    private static InvalidRequestException Malformed(JsonException e) =>
        new("body", $"malformed JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}");

    private sealed class BodyState(int tables)
    {
        public bool SeenDense, SeenSparse, SeenWeights, SeenVersion;
        public int DenseRows;
        public float[]? Dense;
        public TableInput?[] Tables { get; } = new TableInput?[tables];
        public WeightsInput?[] Weights { get; } = new WeightsInput?[tables];
    }

    private sealed class TableInput
    {
        public List<long> Ids { get; } = [];
        public List<int> Offsets { get; } = [0];
        public int Bags => Offsets.Count - 1;
    }

    private sealed class WeightsInput
    {
        public List<float> Floats { get; } = [];
        public List<int> Offsets { get; } = [0];
        public int Bags => Offsets.Count - 1;
    }
}
