using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.Router.Serving;

namespace Recsys.Router.Http;

/// <summary>
/// One side of a context-and-candidates body ("context" or "candidates") as read from the wire,
/// JSON or MessagePack, before it is checked against the model. Context tables and weights are one
/// bag each; candidate tables have one bag per candidate. Wire readers check types (a list, a
/// number, an integer); <see cref="ContextForm.Assemble"/> checks everything the model decides.
/// </summary>
internal sealed class ContextSection(string name)
{
    public string Name { get; } = name;
    public List<float[]>? Dense { get; private set; }
    public List<(string Table, List<long[]> Bags)> Sparse { get; } = [];
    public Dictionary<string, List<float[]>> Weights { get; } = new(StringComparer.Ordinal);

    public void SetDense(List<float[]> rows, string field)
    {
        if (Dense is not null) throw new InvalidRequestException(field, "appears twice");
        Dense = rows;
    }

    public void AddTable(string table, List<long[]> bags, string field)
    {
        if (Sparse.Exists(s => s.Table == table)) throw new InvalidRequestException(field, "appears twice");
        Sparse.Add((table, bags));
    }

    public void AddWeights(string table, List<float[]> bags, string field)
    {
        if (!Weights.TryAdd(table, bags)) throw new InvalidRequestException(field, "appears twice");
    }
}

/// <summary>
/// Turns the two sections into the engine's input: a context table is one bag, looked up once and
/// broadcast to every candidate (<see cref="RankInput.Broadcast"/>); a sample's dense row is the
/// context's values followed by its candidate's. Errors name the field as the client wrote it.
/// </summary>
internal static class ContextForm
{
    public static RankInput Assemble(DlrmSpec spec, int maxBatch, ContextSection? context, ContextSection? candidates)
    {
        float[] contextDense = context?.Dense is { } cd ? cd[0] : [];
        int candidateWidth = spec.DenseFeatures - contextDense.Length;
        if (candidateWidth < 0) throw new InvalidRequestException("context.dense", $"has {contextDense.Length} values, the model has {spec.DenseFeatures} dense features");

        int n = -1;
        string nFrom = "";
        List<float[]>? candidateDense = candidates?.Dense;
        if (candidateDense is not null)
        {
            for (int i = 0; i < candidateDense.Count; i++)
            {
                if (candidateDense[i].Length != candidateWidth) throw new InvalidRequestException($"candidates.dense[{i}]", $"has {candidateDense[i].Length} values; with {contextDense.Length} from context.dense the model needs {candidateWidth}");
            }
            n = candidateDense.Count;
            nFrom = "candidates.dense";
        }
        else if (candidateWidth > 0)
        {
            throw new InvalidRequestException("candidates.dense", $"missing: context.dense has {contextDense.Length} of the model's {spec.DenseFeatures} dense features");
        }

        var tables = new SparseFeature?[spec.Tables.Length];
        var broadcast = new bool[spec.Tables.Length];
        if (context is not null) AddTables(spec, context, tables, broadcast, ref n, ref nFrom, contextSide: true);
        if (candidates is not null) AddTables(spec, candidates, tables, broadcast, ref n, ref nFrom, contextSide: false);
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

    private static void AddTables(DlrmSpec spec, ContextSection section, SparseFeature?[] tables, bool[] broadcast, ref int n, ref string nFrom, bool contextSide)
    {
        string name = section.Name;
        foreach ((string tableName, List<long[]> bags) in section.Sparse)
        {
            string field = $"{name}.sparse.{tableName}";
            int t = spec.TableIndex(tableName);
            if (t < 0) throw new InvalidRequestException(field, $"unknown table (the model has {string.Join(", ", spec.Tables.Select(s => s.Name))})");
            if (tables[t] is not null) throw new InvalidRequestException(field, "given in both context and candidates (or twice)");
            string weightsField = $"{name}.weights.{tableName}";
            List<float[]>? weights = section.Weights.GetValueOrDefault(tableName);
            if (weights is not null && spec.Tables[t].Pooling != Pooling.Sum)
            {
                throw new InvalidRequestException(weightsField, "per-sample weights need sum pooling (as PyTorch's EmbeddingBag), this table pools by mean");
            }
            long rows = spec.Tables[t].Rows;
            if (contextSide)
            {
                long[] ids = bags[0];
                CheckIds(ids, rows, field);
                float[]? bagWeights = weights?[0];
                if (bagWeights is not null && bagWeights.Length != ids.Length) throw new InvalidRequestException(weightsField, $"has {bagWeights.Length} weights for {ids.Length} ids");
                tables[t] = new SparseFeature(ids, [0, ids.Length], bagWeights);
                broadcast[t] = true;
                continue;
            }
            if (n < 0)
            {
                n = bags.Count;
                nFrom = field;
            }
            else if (bags.Count != n)
            {
                throw new InvalidRequestException(field, $"has {bags.Count} bags but {nFrom} has {n} candidates");
            }
            if (weights is not null && weights.Count != bags.Count) throw new InvalidRequestException(weightsField, $"must be a list of {bags.Count} bags like {field}");
            int total = 0;
            foreach (long[] bag in bags) total += bag.Length;
            var allIds = new long[total];
            var offsets = new int[bags.Count + 1];
            float[]? allWeights = weights is null ? null : new float[total];
            for (int b = 0; b < bags.Count; b++)
            {
                CheckIds(bags[b], rows, $"{field}[{b}]");
                bags[b].CopyTo(allIds, offsets[b]);
                if (allWeights is not null)
                {
                    if (weights![b].Length != bags[b].Length) throw new InvalidRequestException($"{weightsField}[{b}]", $"has {weights[b].Length} weights for {bags[b].Length} ids");
                    weights[b].CopyTo(allWeights, offsets[b]);
                }
                offsets[b + 1] = offsets[b] + bags[b].Length;
            }
            tables[t] = new SparseFeature(allIds, offsets, allWeights);
        }
    }

    private static void CheckIds(long[] ids, long rows, string field)
    {
        for (int j = 0; j < ids.Length; j++)
        {
            if ((ulong)ids[j] >= (ulong)rows) throw new InvalidRequestException($"{field}[{j}]", $"id {ids[j]} is outside the table's rows [0, {rows})", 422);
        }
    }
}
