using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Accuracy;

/// <summary>
/// Synthetic click-through data with a planted signal: features are drawn at random (dense
/// uniform in [0, 2), ids skewed towards low rows as real id popularity is), the fp32 teacher
/// model scores them, and each label is drawn from a sharpened, recentred version of the
/// teacher's own probability. The teacher therefore ranks the data well (AUC well above 0.5) and
/// any precision variant of it is measured by how much of that it keeps.
/// </summary>
public static class PlantedClicks
{
    /// <summary>Teacher logits are standardised and multiplied by this: larger means a cleaner signal (higher AUC).</summary>
    public const double DefaultSignal = 2.0;

    public static ClickData Generate(DlrmModel teacher, int samples, ulong seed, double baseRate = 0.25, double signal = DefaultSignal)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samples, 2);
        if (baseRate is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(baseRate), baseRate, "base rate must be in (0, 1)");
        DlrmSpec spec = teacher.Spec;
        var rng = new SplitMix(seed);
        int f = spec.DenseFeatures;
        float[] dense = new float[samples * f];
        for (int i = 0; i < dense.Length; i++) dense[i] = (float)(rng.NextDouble() * 2);
        var ids = new long[spec.Tables.Length][];
        var offsets = new int[spec.Tables.Length][];
        for (int t = 0; t < spec.Tables.Length; t++)
        {
            TableSpec table = spec.Tables[t];
            int lookups = Math.Max(1, table.Lookups);
            ids[t] = new long[samples * lookups];
            offsets[t] = new int[samples + 1];
            for (int s = 0; s < samples; s++)
            {
                offsets[t][s + 1] = (s + 1) * lookups;
                for (int j = 0; j < lookups; j++)
                {
                    // u^3 puts half the draws in the lowest eighth of the rows: a popularity skew.
                    double u = rng.NextDouble();
                    ids[t][s * lookups + j] = Math.Min(table.Rows - 1, (long)(table.Rows * u * u * u));
                }
            }
        }
        var unlabelled = new ClickData(f, dense, ids, offsets, new byte[samples]);
        double[] p = AccuracyEvaluation.Predict(teacher, unlabelled, ScoreCalibration.Identity);

        double[] z = p.Select(ScoreCalibration.Logit).ToArray();
        double mean = z.Average();
        double std = Math.Sqrt(z.Sum(v => (v - mean) * (v - mean)) / z.Length);
        if (std < 1e-9) throw new InvalidOperationException("the teacher gives every sample the same score: no signal to plant");
        double slope = signal / std;
        double bias = BiasForRate(z, mean, slope, baseRate);
        var calibration = new ScoreCalibration(mean, slope, bias);
        byte[] labels = new byte[samples];
        for (int s = 0; s < samples; s++) labels[s] = rng.NextDouble() < calibration.Apply(p[s]) ? (byte)1 : (byte)0;
        return new ClickData(f, dense, ids, offsets, labels, calibration);
    }

    /// <summary>The bias whose mean label probability is the base rate (bisection: the mean is monotone in the bias).</summary>
    private static double BiasForRate(double[] z, double center, double slope, double rate)
    {
        double lo = -30, hi = 30;
        for (int i = 0; i < 60; i++)
        {
            double mid = (lo + hi) / 2, mean = 0;
            foreach (double v in z) mean += 1.0 / (1.0 + Math.Exp(-(slope * (v - center) + mid)));
            if (mean / z.Length < rate) lo = mid;
            else hi = mid;
        }
        return (lo + hi) / 2;
    }
}
