using Recsys.DenseCompute.Accuracy;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Gemm;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Quantized;

/// <summary>Limits of the precision search.</summary>
public sealed record PrecisionSearchOptions
{
    /// <summary>Largest |NE - NE_fp32| / NE_fp32 the whole model may reach (0.001: the paper's 0.1%).</summary>
    public double MaxNeChange { get; init; } = 0.001;

    /// <summary>A layer candidate whose own relative L2 error exceeds this is not tried on the model at all.</summary>
    public double MaxLayerError { get; init; } = 0.1;

    /// <summary>Calibration samples whose layer inputs the per-layer error report uses.</summary>
    public int LayerSamples { get; init; } = 4096;

    /// <summary>Also try cheaper row formats for the tables.</summary>
    public bool Rows { get; init; } = true;

    public IReadOnlyList<LayerCandidate> Candidates { get; init; } = LayerErrorReport.Candidates;
}

/// <summary>One candidate scored on the whole calibration set with everything accepted before it.</summary>
/// <param name="NeChange">(NE - NE_fp32) / NE_fp32 (0.001 is 0.1%).</param>
public sealed record PrecisionTrial(string Candidate, AccuracyResult Result, double NeChange, bool Accepted);

/// <summary>The per-layer line of the report: each candidate's error, the trials on the model, the choice and why.</summary>
public sealed record LayerSearch(string Layer, int InFeatures, int OutFeatures, bool NetAware, CandidateError[] Errors, PrecisionTrial[] Trials, LayerCandidate Chosen, string Reason);

/// <summary>A cheaper row format's error on the table's pooled vectors (relative L2 against the stored format).</summary>
public sealed record RowError(RowFormat Format, double RelativeL2);

public sealed record TableSearch(string Table, long Rows, int Dim, RowFormat Stored, RowError[] Errors, PrecisionTrial[] Trials, RowFormat Chosen, string Reason);

public sealed record QuantizationResult(
    QuantizationPlan Plan,
    AccuracyResult Fp32,
    AccuracyResult Chosen,
    LayerSearch[] Layers,
    TableSearch[] Tables,
    PrecisionSearchOptions Options,
    int Samples,
    int LayerSamples)
{
    /// <summary>The layer moves in the order the search weighed them, with what became of each.</summary>
    public LayerMove[] Moves { get; init; } = [];
}

/// <summary>
/// One layer at one reduced precision, measured alone (every other layer fp32): its NE change and the weight bytes it saves.
/// </summary>
/// <param name="AloneNeChange">(NE - NE_fp32) / NE_fp32 with only this layer reduced.</param>
public sealed record LayerMove(string Layer, int LayerIndex, LayerCandidate Candidate, double AloneNeChange, long BytesSaved)
{
    /// <summary>|NE change alone| per MB of weights saved: the order in which the search spends its budget.</summary>
    public double NeCostPerMegabyte => Math.Abs(AloneNeChange) / (BytesSaved / 1e6);

    /// <summary>The trial on the model with the moves accepted before it; null if the move was not tried on it.</summary>
    public PrecisionTrial? Trial { get; init; }

    public string Outcome { get; init; } = "";
}

/// <summary>
/// Selective quantization (Park et al. 2018) as a greedy search on a labelled calibration set:
/// measure every Linear layer's own error at fp16 and at int8 with each weight-range technique, then the
/// model's NE change with each layer alone at its best int8 setting and at fp16, then take those moves from
/// the least NE change per byte saved to the most, keeping each under which the whole model's normalized
/// entropy stays within <see cref="PrecisionSearchOptions.MaxNeChange"/> of fp32 (an int8 move may replace
/// an fp16 one accepted earlier); then, layer by layer, each table's row format. Layers start from fp32 whatever the spec says;
/// tables start from their stored format and only move to smaller rows.
/// </summary>
/// <remarks>
/// The embedding tables are pooled once per row format for the whole calibration set, so a trial only
/// reloads the dense layers (milliseconds) and runs them; no table is re-encoded per trial.
/// </remarks>
public sealed class PrecisionSearch : IDisposable
{
    private const int BatchSize = 512;

    private readonly DlrmSpec _spec;
    private readonly SafeTensorsFile _weights;
    private readonly string _weightsPath;
    private readonly ClickData _data;
    private readonly PrecisionSearchOptions _options;
    private readonly Action<string> _progress;
    private readonly int[] _dims;
    private readonly Dictionary<RowFormat, float[]?[]> _pooled = [];
    private float[][]? _storedPooled;
    private double[]? _fp32Predictions;
    private LayerMove[] _moves = [];

    public PrecisionSearch(DlrmSpec spec, string weightsPath, ClickData data, PrecisionSearchOptions? options = null, Action<string>? progress = null)
    {
        if (data.DenseFeatures != spec.DenseFeatures || data.Ids.Length != spec.Tables.Length)
        {
            throw new ArgumentException($"the calibration data has {data.DenseFeatures} dense features and {data.Ids.Length} tables, the model {spec.DenseFeatures} and {spec.Tables.Length}", nameof(data));
        }

        _spec = spec;
        _weightsPath = weightsPath;
        _weights = SafeTensorsFile.Open(weightsPath);
        _data = data;
        _options = options ?? new PrecisionSearchOptions();
        _progress = progress ?? (_ => { });
        _dims = [.. spec.Tables.Select(t => t.Dim)];
    }

    public QuantizationResult Run()
    {
        QuantizationPlan plan = QuantizationPlan.Fp32Dense(_spec);
        AccuracyResult fp32 = Evaluate("fp32", plan);
        _progress($"fp32: NE {fp32.NormalizedEntropy:F5}, AUC {fp32.Auc:F5} on {_data.Samples:N0} samples");

        LayerSearch[] layers = SearchLayers(ref plan, fp32);
        TableSearch[] tables = _options.Rows ? SearchTables(ref plan, fp32) : [];
        AccuracyResult chosen = Evaluate("chosen", plan);
        _pooled.Clear(); // the per-format pooled sets are the largest buffers of the search
        _progress($"chosen: NE {chosen.NormalizedEntropy:F5} ({Percent(chosen.NeChangePercent(fp32) / 100)}), AUC {chosen.Auc:F5}");
        return new QuantizationResult(plan, fp32, chosen, layers, tables, _options, _data.Samples, Math.Min(_options.LayerSamples, _data.Samples)) { Moves = _moves };
    }

    private LayerSearch[] SearchLayers(ref QuantizationPlan plan, AccuracyResult fp32)
    {
        IReadOnlyList<string> names = QuantizationPlan.LayerNames(_spec);
        float[][] inputs = CaptureLayerInputs(out int m);
        var measured = new (string Name, int In, int Out, bool NetAware, CandidateError[] Errors)[names.Count];
        for (int l = 0; l < names.Count; l++)
        {
            (int index, bool top) = Locate(l);
            int outputs = top ? _spec.TopMlp[index] : _spec.BottomMlp[index];
            int ins = inputs[l].Length / m;
            float[] w = _weights.ReadFloats(top ? DlrmSpec.TopWeightName(index) : DlrmSpec.BottomWeightName(index), outputs, ins);
            float[] b = _weights.ReadFloats(top ? DlrmSpec.TopBiasName(index) : DlrmSpec.BottomBiasName(index), outputs);
            Activation act = top && index == _spec.TopMlp.Length - 1 ? Activation.Sigmoid : Activation.Relu;
            bool netAware = index > 0; // as DlrmDense loads it: every layer but an MLP's first reads a ReLU output
            CandidateError[] errors = LayerErrorReport.Measure(w, b, outputs, ins, act, netAware, inputs[l], m, _options.Candidates);
            measured[l] = (names[l], ins, outputs, netAware, errors);
            _progress($"{names[l]} ({ins} -> {outputs}): " + string.Join(", ", errors.Select(e => $"{e.Candidate.Name} {(e.Packed ? e.RelativeL2.ToString("E2", System.Globalization.CultureInfo.InvariantCulture) : "cannot pack")}")));
        }

        // Every candidate alone first (the rest of the model fp32), so each move's cost in NE is measured, not guessed from its layer error.
        var moves = new List<LayerMove>();
        var trials = new List<PrecisionTrial>[names.Count];
        var why = new List<string>[names.Count];
        for (int l = 0; l < names.Count; l++)
        {
            trials[l] = [];
            why[l] = [];
            var (name, ins, outs, _, errors) = measured[l];
            CandidateError? int8 = BestInt8(errors);
            if (int8 is null) why[l].Add("no int8 candidate packed");
            foreach (CandidateError? c in (CandidateError?[])[int8, errors.FirstOrDefault(e => e.Candidate.Precision == LayerPrecision.Fp16)])
            {
                if (c is null) continue;
                if (!c.Packed)
                {
                    why[l].Add($"{c.Candidate.Name}: cannot pack ({c.Failure})");
                    continue;
                }

                if (c.RelativeL2 > _options.MaxLayerError)
                {
                    why[l].Add($"{c.Candidate.Name}: layer error {c.RelativeL2:E2} above the {_options.MaxLayerError:G3} limit");
                    continue;
                }

                PrecisionTrial alone = Try($"{name} {c.Candidate.Name} alone", plan.WithLayer(name, c.Candidate), fp32);
                trials[l].Add(alone with { Accepted = false });
                moves.Add(new LayerMove(name, l, c.Candidate, alone.NeChange, BytesSaved(ins, outs, c.Candidate.Precision)));
            }
        }

        // Cheapest NE per byte saved first: a move that costs little of the budget for many bytes should not
        // wait behind one that the layer-error order happened to rank earlier and that spends most of the budget.
        LayerMove[] ordered = [.. moves.OrderBy(v => v.NeCostPerMegabyte).ThenBy(v => v.LayerIndex).ThenBy(v => v.Candidate.Precision == LayerPrecision.Int8 ? 0 : 1)];
        var chosen = new LayerCandidate[names.Count];
        Array.Fill(chosen, LayerCandidate.Fp32);
        var tried = new List<LayerMove>();
        foreach (LayerMove move in ordered)
        {
            int l = move.LayerIndex;
            string tag = move.Candidate.Name;
            if (BytesSaved(measured[l].In, measured[l].Out, chosen[l].Precision) >= move.BytesSaved)
            {
                tried.Add(move with { Outcome = $"skipped: {chosen[l].Name} already chosen" });
                continue;
            }

            if (Math.Abs(move.AloneNeChange) >= _options.MaxNeChange)
            {
                // Alone it already spends the whole budget; with other layers reduced it would rarely fit, and the rule is per model.
                why[l].Add($"{tag}: NE change alone {Percent(move.AloneNeChange)} beyond ±{Percent(_options.MaxNeChange, signed: false)}");
                tried.Add(move with { Outcome = "rejected alone" });
                continue;
            }

            QuantizationPlan trial = plan.WithLayer(move.Layer, move.Candidate);
            PrecisionTrial t = Try($"{move.Layer} {tag}", trial, fp32);
            trials[l].Add(t);
            tried.Add(move with { Trial = t, Outcome = t.Accepted ? "accepted" : "rejected" });
            if (t.Accepted)
            {
                plan = trial;
                chosen[l] = move.Candidate;
                why[l].Add($"{tag}: model NE change {Percent(t.NeChange)} within ±{Percent(_options.MaxNeChange, signed: false)} (alone {Percent(move.AloneNeChange)}, {move.NeCostPerMegabyte:E2} per MB saved)");
            }
            else
            {
                why[l].Add($"{tag}: model NE change {Percent(t.NeChange)} beyond ±{Percent(_options.MaxNeChange, signed: false)} with the layers accepted before it");
            }
        }

        _moves = [.. tried];
        var result = new LayerSearch[names.Count];
        for (int l = 0; l < names.Count; l++)
        {
            var (name, ins, outs, netAware, errors) = measured[l];
            result[l] = new LayerSearch(name, ins, outs, netAware, errors, [.. trials[l]], chosen[l], string.Join("; ", why[l]));
        }

        return result;
    }

    /// <summary>Weight bytes a layer saves at <paramref name="precision"/> against fp32.</summary>
    private static long BytesSaved(int ins, int outs, LayerPrecision precision) =>
        (long)ins * outs * (4 - precision switch { LayerPrecision.Fp16 => 2, LayerPrecision.Int8 => 1, _ => 4 });

    /// <summary>The int8 setting with the least layer error among those that packed.</summary>
    private static CandidateError? BestInt8(CandidateError[] errors) =>
        errors.Where(e => e.Packed && e.Candidate.Precision == LayerPrecision.Int8).OrderBy(e => e.RelativeL2).FirstOrDefault();

    private TableSearch[] SearchTables(ref QuantizationPlan plan, AccuracyResult fp32)
    {
        var result = new TableSearch[_spec.Tables.Length];
        for (int t = 0; t < _spec.Tables.Length; t++)
        {
            TableSpec table = _spec.Tables[t];
            RowFormat[] smaller = CandidateFormats(table);
            var errors = new List<RowError>();
            var trials = new List<PrecisionTrial>();
            var why = new List<string>();
            RowFormat chosen = table.Storage;
            if (smaller.Length == 0) why.Add(Reencodable(table) ? "no smaller row format" : $"stored {RowLayout.Name(table.Storage)}: rows are not re-encoded");
            foreach (RowFormat f in smaller)
            {
                errors.Add(new RowError(f, RelativeL2(PooledBlock(t, f), PooledBlock(t, table.Storage))));
            }

            foreach (RowFormat f in smaller)
            {
                QuantizationPlan trial = plan.WithTable(t, f);
                PrecisionTrial r = Try($"table {table.Name} {RowLayout.Name(f)}", trial, fp32);
                trials.Add(r);
                string line = $"{RowLayout.Name(f)} rows: model NE change {Percent(r.NeChange)}";
                if (r.Accepted)
                {
                    plan = trial;
                    chosen = f;
                    why.Add($"{line} within ±{Percent(_options.MaxNeChange, signed: false)}");
                    break;
                }

                why.Add($"{line} beyond ±{Percent(_options.MaxNeChange, signed: false)}");
            }

            result[t] = new TableSearch(table.Name, table.Rows, table.Dim, table.Storage, [.. errors], [.. trials], chosen, string.Join("; ", why));
        }

        return result;
    }

    /// <summary>Formats with fewer bytes per row than the stored one, smallest first; none for prepacked or already-quantized tables.</summary>
    private static RowFormat[] CandidateFormats(TableSpec table) =>
        !Reencodable(table) ? []
        : [.. new[] { RowFormat.Int4, RowFormat.Int8, RowFormat.Fp16 }
            .Where(f => RowLayout.RowBytes(f, table.Dim) < table.RowBytes)
            .OrderBy(f => RowLayout.RowBytes(f, table.Dim))];

    /// <summary>Float tables are re-encoded at load; quantized ones may be FBGEMM-prepacked bytes with no float source.</summary>
    private static bool Reencodable(TableSpec table) => table.Storage is RowFormat.Fp32 or RowFormat.Fp16;

    private PrecisionTrial Try(string name, QuantizationPlan plan, AccuracyResult fp32)
    {
        AccuracyResult r = Evaluate(name, plan);
        double change = (r.NormalizedEntropy - fp32.NormalizedEntropy) / fp32.NormalizedEntropy;
        bool accepted = Math.Abs(change) < _options.MaxNeChange;
        _progress($"  try {name}: NE change {Percent(change)}, AUC {r.Auc:F5} -> {(accepted ? "keep" : "reject")}");
        return new PrecisionTrial(name, r, change, accepted);
    }

    /// <summary>Scores the calibration set with the plan's dense precisions and row formats.</summary>
    private AccuracyResult Evaluate(string name, QuantizationPlan plan)
    {
        DlrmDense dense = DlrmDense.Load(plan.Apply(_spec), _weights);
        int n = _data.Samples, f = _spec.DenseFeatures, events = _spec.Events;
        int pooledWidth = _dims.Sum();
        var p = new double[n];
        var bottom = new float[BatchSize * _spec.BottomOutput];
        var pooled = new float[BatchSize * pooledWidth];
        var scores = new float[BatchSize * events];
        for (int start = 0; start < n; start += BatchSize)
        {
            int b = Math.Min(BatchSize, n - start);
            dense.Bottom(_data.Dense.AsSpan(start * f, b * f), b, bottom.AsSpan(0, b * _spec.BottomOutput));
            AssemblePooled(plan, start, b, pooled);
            dense.Top(bottom.AsSpan(0, b * _spec.BottomOutput), pooled.AsSpan(0, b * pooledWidth), b, scores.AsSpan(0, b * events));
            for (int i = 0; i < b; i++) p[start + i] = _data.Calibration.Apply(scores[i * events]);
        }

        AccuracyResult result = AccuracyEvaluation.Evaluate(name, p, _data, _fp32Predictions);
        _fp32Predictions ??= p;
        return result;
    }

    /// <summary>Samples [start, start + count) in the layout Interaction reads: per table a count x dim block.</summary>
    private void AssemblePooled(QuantizationPlan plan, int start, int count, Span<float> pooled)
    {
        int offset = 0;
        for (int t = 0; t < _dims.Length; t++)
        {
            int dim = _dims[t];
            PooledBlock(t, plan.Tables[t]).AsSpan(start * dim, count * dim).CopyTo(pooled.Slice(offset, count * dim));
            offset += count * dim;
        }
    }

    /// <summary>Table <paramref name="t"/> pooled for every calibration sample with rows in <paramref name="format"/>.</summary>
    private float[] PooledBlock(int t, RowFormat format)
    {
        if (format == _spec.Tables[t].Storage) return (_storedPooled ??= Pool(_spec))[t];
        if (!_pooled.TryGetValue(format, out float[]?[]? blocks))
        {
            DlrmSpec spec = _spec with { Tables = [.. _spec.Tables.Select(x => Reencodable(x) ? x with { Storage = format } : x)] };
            _progress($"pooling the calibration set with {RowLayout.Name(format)} rows");
            blocks = Pool(spec);
            for (int i = 0; i < blocks.Length; i++)
            {
                if (!Reencodable(_spec.Tables[i])) blocks[i] = null;
            }

            _pooled[format] = blocks;
        }

        return blocks[t] ?? throw new InvalidOperationException($"table {_spec.Tables[t].Name} cannot be re-encoded as {RowLayout.Name(format)}");
    }

    private float[][] Pool(DlrmSpec spec)
    {
        using DlrmModel model = DlrmModel.Load(spec, _weightsPath);
        int n = _data.Samples;
        float[][] blocks = [.. _dims.Select(d => new float[(long)n * d])];
        var pooled = new float[BatchSize * _dims.Sum()];
        for (int start = 0; start < n; start += BatchSize)
        {
            int b = Math.Min(BatchSize, n - start);
            model.Pool(_data.Batch(start, b), pooled.AsSpan(0, b * _dims.Sum()));
            int offset = 0;
            for (int t = 0; t < _dims.Length; t++)
            {
                pooled.AsSpan(offset, b * _dims[t]).CopyTo(blocks[t].AsSpan(start * _dims[t]));
                offset += b * _dims[t];
            }
        }

        return blocks;
    }

    /// <summary>
    /// The fp32 input of every Linear layer on the first calibration samples, in <see cref="QuantizationPlan.LayerNames"/>
    /// order, so each layer's error is its own and not the sum of the layers before it.
    /// </summary>
    private float[][] CaptureLayerInputs(out int m)
    {
        int samples = Math.Min(_options.LayerSamples, _data.Samples);
        m = samples;
        DlrmDense dense = DlrmDense.Load(QuantizationPlan.Fp32Dense(_spec).Apply(_spec), _weights);
        IReadOnlyList<IDenseLayer> layers = [.. dense.BottomLayers, .. dense.TopLayers];
        float[][] inputs = [.. layers.Select(l => new float[(long)samples * l.InFeatures])];
        int f = _spec.DenseFeatures, pooledWidth = _dims.Sum(), bottomLayers = dense.BottomLayers.Count;
        var pooled = new float[BatchSize * pooledWidth];
        var z = new float[BatchSize * dense.Interaction.OutputWidth];
        for (int start = 0; start < samples; start += BatchSize)
        {
            int b = Math.Min(BatchSize, samples - start);
            float[] x = _data.Dense.AsSpan(start * f, b * f).ToArray();
            for (int l = 0; l < layers.Count; l++)
            {
                if (l == bottomLayers)
                {
                    AssemblePooled(QuantizationPlan.Fp32Dense(_spec), start, b, pooled);
                    dense.Interaction.Forward(x, pooled.AsSpan(0, b * pooledWidth), b, z.AsSpan(0, b * dense.Interaction.OutputWidth));
                    x = z.AsSpan(0, b * dense.Interaction.OutputWidth).ToArray();
                }

                x.CopyTo(inputs[l].AsSpan(start * layers[l].InFeatures));
                var y = new float[b * layers[l].OutFeatures];
                layers[l].Forward(x, b, y);
                x = y;
            }
        }

        return inputs;
    }

    private (int Index, bool Top) Locate(int layer) =>
        layer < _spec.BottomMlp.Length ? (layer, false) : (layer - _spec.BottomMlp.Length, true);

    private static double RelativeL2(ReadOnlySpan<float> actual, ReadOnlySpan<float> reference) =>
        LayerErrorReport.Compare("", LayerPrecision.Fp32, actual, reference).RelativeL2;

    internal static string Percent(double fraction, bool signed = true)
    {
        string text = (fraction * 100).ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture);
        return (signed && !text.StartsWith('-') ? "+" : "") + text + "%";
    }

    public void Dispose() => _weights.Dispose();
}
