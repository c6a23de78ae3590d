using Recsys.DenseCompute.Dlrm;

namespace Recsys.DenseCompute.Accuracy;

/// <summary>One model scored on one labelled set: AUC, log loss, normalized entropy.</summary>
public sealed record AccuracyResult(string Variant, double Auc, double LogLoss, double NormalizedEntropy, double MaxAbsDelta)
{
    /// <summary>Relative change of normalized entropy against a reference, in percent (positive is worse).</summary>
    public double NeChangePercent(AccuracyResult reference) => (NormalizedEntropy - reference.NormalizedEntropy) / reference.NormalizedEntropy * 100;
}

public static class AccuracyEvaluation
{
    private const int BatchSize = 512;

    /// <summary>The first event's probability per sample, through the data's calibration.</summary>
    public static double[] Predict(DlrmModel model, ClickData data, ScoreCalibration calibration)
    {
        int events = model.Spec.Events;
        double[] p = new double[data.Samples];
        float[] scores = new float[BatchSize * events];
        for (int start = 0; start < data.Samples; start += BatchSize)
        {
            int n = Math.Min(BatchSize, data.Samples - start);
            model.Score(data.Batch(start, n), scores);
            for (int i = 0; i < n; i++) p[start + i] = calibration.Apply(scores[i * events]);
        }
        return p;
    }

    /// <param name="reference">The fp32 predictions to measure the largest per-sample change against, or null.</param>
    public static AccuracyResult Evaluate(string variant, double[] predictions, ClickData data, double[]? reference = null)
    {
        double maxDelta = 0;
        if (reference is not null)
        {
            for (int i = 0; i < predictions.Length; i++) maxDelta = Math.Max(maxDelta, Math.Abs(predictions[i] - reference[i]));
        }
        return new AccuracyResult(
            variant,
            ClickMetrics.Auc(predictions, data.Labels),
            ClickMetrics.LogLoss(predictions, data.Labels),
            ClickMetrics.NormalizedEntropy(predictions, data.Labels),
            maxDelta);
    }
}
