using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Characterization;

/// <summary>Parameter counts and bytes at the stored precision, dense and embedding apart.</summary>
public sealed record ParameterSummary(long DenseParameters, long EmbeddingParameters, long DenseBytes, long EmbeddingBytes, string DensePrecision, string EmbeddingPrecision)
{
    public long TotalBytes => DenseBytes + EmbeddingBytes;
}

/// <summary>
/// The accounting of a DLRM from its spec alone, in the order <see cref="Dlrm.DlrmModel.Score(Dlrm.RankBatch, Span{float})"/>
/// runs it: bottom MLP, one bag per table, interaction, top MLP. Operator names match what
/// <see cref="DlrmProfiler"/> times.
/// </summary>
public static class DlrmAccounting
{
    // The names model.json's per-layer precision overrides use, so accounting finds each layer's precision.
    public static string BottomName(int layer) => DensePrecision.BottomLayer(layer);
    public static string TopName(int layer) => DensePrecision.TopLayer(layer);
    public static string TableName(TableSpec table) => $"emb.{table.Name}";
    public const string InteractionName = "interaction";
    public const string BottomCopyName = "bottom.copy";

    /// <summary>Ids per bag the accounting and the profiler assume: the table's typical pooling factor, at least 1.</summary>
    public static int LookupsPerBag(TableSpec table) => Math.Max(1, table.Lookups);

    /// <summary>Parameters and bytes, each Linear layer at the precision model.json gives it (<see cref="DlrmSpec.Precision"/>).</summary>
    public static ParameterSummary Parameters(DlrmSpec spec)
    {
        long denseParams = 0, denseBytes = 0;
        var precisions = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string name, int inputs, int outputs) in Layers(spec))
        {
            LayerPrecision precision = spec.Precision.For(name);
            precisions.Add(LayerPrecisions.Name(precision));
            denseParams += (long)inputs * outputs + outputs;
            denseBytes += OperatorAccounting.LinearWeightBytes(inputs, outputs, precision);
        }
        long embParams = spec.Tables.Sum(t => t.Rows * t.Dim);
        long embBytes = spec.Tables.Sum(t => t.Rows * t.RowBytes);
        string formats = string.Join("+", spec.Tables.Select(t => Embeddings.RowLayout.Name(t.Storage)).Distinct());
        return new ParameterSummary(denseParams, embParams, denseBytes, embBytes, string.Join("+", precisions), formats);
    }

    public static IReadOnlyList<OperatorCost> Operators(DlrmSpec spec, int batch)
    {
        var ops = new List<OperatorCost>();
        int inputs = spec.DenseFeatures;
        for (int i = 0; i < spec.BottomMlp.Length; i++)
        {
            ops.Add(OperatorAccounting.Linear(BottomName(i), batch, inputs, spec.BottomMlp[i], spec.Precision.For(BottomName(i))));
            inputs = spec.BottomMlp[i];
        }
        if (spec.BottomMlp.Length == 0) ops.Add(OperatorAccounting.Copy(BottomCopyName, batch, spec.DenseFeatures));
        foreach (TableSpec table in spec.Tables) ops.Add(OperatorAccounting.EmbeddingBag(TableName(table), batch, table, LookupsPerBag(table)));
        ops.Add(OperatorAccounting.Interaction(InteractionName, batch, spec));
        inputs = spec.InteractionOutput;
        for (int i = 0; i < spec.TopMlp.Length; i++)
        {
            ops.Add(OperatorAccounting.Linear(TopName(i), batch, inputs, spec.TopMlp[i], spec.Precision.For(TopName(i))));
            inputs = spec.TopMlp[i];
        }
        return ops;
    }

    /// <summary>
    /// Peak live activation bytes of one forward pass of <paramref name="batch"/> samples, counting
    /// the request's dense features and each table's ids and offsets as live until their operator ran.
    /// </summary>
    public static long MaxLiveActivationBytes(DlrmSpec spec, int batch)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be > 0");
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        var steps = new List<GraphStep>();
        long Floats(long n) => n * batch * sizeof(float);

        sizes["dense"] = Floats(spec.DenseFeatures);
        string x = "dense";
        for (int i = 0; i < spec.BottomMlp.Length; i++)
        {
            string y = BottomName(i);
            sizes[y] = Floats(spec.BottomMlp[i]);
            steps.Add(new GraphStep(y, [x], [y]));
            x = y;
        }
        if (spec.BottomMlp.Length == 0)
        {
            sizes[BottomCopyName] = Floats(spec.DenseFeatures);
            steps.Add(new GraphStep(BottomCopyName, [x], [BottomCopyName]));
            x = BottomCopyName;
        }
        var pooled = new List<string> { x };
        foreach (TableSpec table in spec.Tables)
        {
            string ids = "ids." + table.Name, bag = TableName(table);
            sizes[ids] = (long)batch * LookupsPerBag(table) * sizeof(long) + (batch + 1L) * sizeof(int);
            sizes[bag] = Floats(table.Dim);
            steps.Add(new GraphStep(bag, [ids], [bag]));
            pooled.Add(bag);
        }
        sizes[InteractionName] = Floats(spec.InteractionOutput);
        steps.Add(new GraphStep(InteractionName, pooled, [InteractionName]));
        x = InteractionName;
        for (int i = 0; i < spec.TopMlp.Length; i++)
        {
            string y = TopName(i);
            sizes[y] = Floats(spec.TopMlp[i]);
            steps.Add(new GraphStep(y, [x], [y]));
            x = y;
        }
        return LiveActivations.Peak(steps, sizes);
    }

    private static IEnumerable<(string Name, int Inputs, int Outputs)> Layers(DlrmSpec spec)
    {
        int inputs = spec.DenseFeatures;
        for (int i = 0; i < spec.BottomMlp.Length; i++)
        {
            yield return (BottomName(i), inputs, spec.BottomMlp[i]);
            inputs = spec.BottomMlp[i];
        }
        inputs = spec.InteractionOutput;
        for (int i = 0; i < spec.TopMlp.Length; i++)
        {
            yield return (TopName(i), inputs, spec.TopMlp[i]);
            inputs = spec.TopMlp[i];
        }
    }
}
