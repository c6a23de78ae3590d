using System.Globalization;
using System.Text;
using System.Text.Json;
using Recsys.DenseCompute.Accuracy;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.DenseCompute.Quantized;

/// <summary>quantize-report.json and quantize-report.md: per layer the errors, the choice and why; the model's NE/AUC at fp32 and as chosen.</summary>
public static class QuantizationReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Json(QuantizationResult r, string model, string calibration)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("model", model);
            json.WriteString("calibration", calibration);
            json.WriteNumber("samples", r.Samples);
            json.WriteNumber("layer_samples", r.LayerSamples);
            json.WriteNumber("max_ne_change", r.Options.MaxNeChange);
            json.WriteNumber("max_layer_error", r.Options.MaxLayerError);
            WriteResult(json, "fp32", r.Fp32, null);
            WriteResult(json, "chosen", r.Chosen, r.Fp32);
            json.WriteStartArray("layers");
            foreach (LayerSearch l in r.Layers)
            {
                json.WriteStartObject();
                json.WriteString("layer", l.Layer);
                json.WriteNumber("in", l.InFeatures);
                json.WriteNumber("out", l.OutFeatures);
                json.WriteBoolean("net_aware_input", l.NetAware);
                json.WriteStartArray("errors");
                foreach (CandidateError e in l.Errors)
                {
                    json.WriteStartObject();
                    json.WriteString("candidate", e.Candidate.Name);
                    if (e.Packed)
                    {
                        json.WriteNumber("relative_l2", e.RelativeL2);
                        json.WriteNumber("max_abs", e.MaxAbs);
                    }
                    else
                    {
                        json.WriteString("failure", e.Failure);
                    }

                    json.WriteEndObject();
                }

                json.WriteEndArray();
                WriteTrials(json, l.Trials);
                json.WriteString("chosen", l.Chosen.Name);
                // The same setting as model.json spells it, so the report alone rebuilds the layer.
                json.WriteString("chosen_precision", LayerPrecisions.Name(l.Chosen.Precision));
                if (l.Chosen.Precision == LayerPrecision.Int8)
                {
                    json.WriteString("chosen_weight_range", l.Chosen.Int8.WeightRange == WeightRangeMethod.L2 ? "l2" : "minmax");
                    json.WriteNumber("chosen_outlier_density", l.Chosen.Int8.OutlierDensity);
                }

                json.WriteString("reason", l.Reason);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("moves");
            foreach (LayerMove v in r.Moves)
            {
                json.WriteStartObject();
                json.WriteString("layer", v.Layer);
                json.WriteString("candidate", v.Candidate.Name);
                json.WriteNumber("alone_ne_change_percent", v.AloneNeChange * 100);
                json.WriteNumber("bytes_saved", v.BytesSaved);
                json.WriteNumber("ne_change_per_mb", v.NeCostPerMegabyte);
                json.WriteString("outcome", v.Outcome);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("tables");
            foreach (TableSearch t in r.Tables)
            {
                json.WriteStartObject();
                json.WriteString("table", t.Table);
                json.WriteNumber("rows", t.Rows);
                json.WriteNumber("dim", t.Dim);
                json.WriteString("stored", RowLayout.Name(t.Stored));
                json.WriteStartArray("errors");
                foreach (RowError e in t.Errors)
                {
                    json.WriteStartObject();
                    json.WriteString("format", RowLayout.Name(e.Format));
                    json.WriteNumber("pooled_relative_l2", e.RelativeL2);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                WriteTrials(json, t.Trials);
                json.WriteString("chosen", RowLayout.Name(t.Chosen));
                json.WriteString("reason", t.Reason);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static string Markdown(QuantizationResult r, string model, string calibration)
    {
        var md = new StringBuilder();
        md.AppendLine(Inv, $"# recsys quantize: {model}");
        md.AppendLine();
        md.AppendLine(Inv, $"Calibration: {calibration}; {r.Samples:N0} samples for NE/AUC, the first {r.LayerSamples:N0} for layer errors. Limit: model NE change within ±{PrecisionSearch.Percent(r.Options.MaxNeChange, signed: false)} of fp32; layer candidates with relative L2 error above {r.Options.MaxLayerError:G3} are not tried.");
        md.AppendLine();
        md.AppendLine("| model | AUC | log loss | NE | NE change vs fp32 |");
        md.AppendLine("|---|---|---|---|---|");
        md.AppendLine(Inv, $"| fp32 | {r.Fp32.Auc:F5} | {r.Fp32.LogLoss:F5} | {r.Fp32.NormalizedEntropy:F5} | - |");
        md.AppendLine(Inv, $"| chosen | {r.Chosen.Auc:F5} | {r.Chosen.LogLoss:F5} | {r.Chosen.NormalizedEntropy:F5} | {PrecisionSearch.Percent(r.Chosen.NeChangePercent(r.Fp32) / 100)} |");
        md.AppendLine();
        md.AppendLine("## Dense layers");
        md.AppendLine();
        md.AppendLine("Relative L2 error of each layer's output against fp32, measured on its own fp32 inputs.");
        md.AppendLine();
        LayerCandidate[] candidates = [.. r.Layers.SelectMany(l => l.Errors.Select(e => e.Candidate)).Distinct()];
        md.AppendLine("| layer | shape | net-aware input | " + string.Join(" | ", candidates.Select(c => c.Name)) + " | chosen | why |");
        md.AppendLine("|---|---|---|" + string.Concat(candidates.Select(_ => "---|")) + "---|---|");
        foreach (LayerSearch l in r.Layers)
        {
            IEnumerable<string> cells = candidates.Select(c => l.Errors.FirstOrDefault(e => e.Candidate == c) is { } e ? (e.Packed ? e.RelativeL2.ToString("E2", Inv) : "cannot pack") : "-");
            md.AppendLine(Inv, $"| {l.Layer} | {l.InFeatures} -> {l.OutFeatures} | {(l.NetAware ? "yes" : "no")} | {string.Join(" | ", cells)} | **{l.Chosen.Name}** | {l.Reason} |");
        }

        if (r.Moves.Length > 0)
        {
            md.AppendLine();
            md.AppendLine("Layer moves in the order the search weighed them: least NE change (each alone) per MB of weights saved first.");
            md.AppendLine();
            md.AppendLine("| layer | candidate | NE change alone | MB saved | outcome |");
            md.AppendLine("|---|---|---|---|---|");
            foreach (LayerMove v in r.Moves)
            {
                md.AppendLine(Inv, $"| {v.Layer} | {v.Candidate.Name} | {PrecisionSearch.Percent(v.AloneNeChange)} | {v.BytesSaved / 1e6:F3} | {v.Outcome}{(v.Trial is { } t ? $" ({PrecisionSearch.Percent(t.NeChange)} on the model)" : "")} |");
            }
        }

        if (r.Tables.Length > 0)
        {
            md.AppendLine();
            md.AppendLine("## Tables");
            md.AppendLine();
            md.AppendLine("Relative L2 error of the pooled vectors against the stored rows.");
            md.AppendLine();
            md.AppendLine("| table | rows x dim | stored | int4 | int8 | fp16 | chosen | why |");
            md.AppendLine("|---|---|---|---|---|---|---|---|");
            foreach (TableSearch t in r.Tables)
            {
                string Cell(RowFormat f) => t.Errors.FirstOrDefault(e => e.Format == f) is { } e ? e.RelativeL2.ToString("E2", Inv) : "-";
                md.AppendLine(Inv, $"| {t.Table} | {t.Rows:N0} x {t.Dim} | {RowLayout.Name(t.Stored)} | {Cell(RowFormat.Int4)} | {Cell(RowFormat.Int8)} | {Cell(RowFormat.Fp16)} | **{RowLayout.Name(t.Chosen)}** | {t.Reason} |");
            }
        }

        return md.ToString();
    }

    private static void WriteResult(Utf8JsonWriter json, string name, AccuracyResult r, AccuracyResult? reference)
    {
        json.WriteStartObject(name);
        json.WriteNumber("auc", r.Auc);
        json.WriteNumber("log_loss", r.LogLoss);
        json.WriteNumber("normalized_entropy", r.NormalizedEntropy);
        if (reference is not null)
        {
            json.WriteNumber("ne_change_percent", r.NeChangePercent(reference));
            json.WriteNumber("max_abs_delta", r.MaxAbsDelta);
        }

        json.WriteEndObject();
    }

    private static void WriteTrials(Utf8JsonWriter json, PrecisionTrial[] trials)
    {
        json.WriteStartArray("trials");
        foreach (PrecisionTrial t in trials)
        {
            json.WriteStartObject();
            json.WriteString("candidate", t.Candidate);
            json.WriteNumber("auc", t.Result.Auc);
            json.WriteNumber("normalized_entropy", t.Result.NormalizedEntropy);
            json.WriteNumber("ne_change_percent", t.NeChange * 100);
            json.WriteBoolean("accepted", t.Accepted);
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }
}
