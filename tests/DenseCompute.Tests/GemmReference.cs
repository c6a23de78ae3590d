using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Tests;

/// <summary>Naive double-precision Linear layer and the tolerance the fp32 kernels must meet against it.</summary>
internal static class GemmReference
{
    /// <summary>Relative tolerance on top of the summation bound.</summary>
    public const double Relative = 1e-5;

    /// <summary>
    /// Per-term rounding allowance: fp32 accumulation of K+1 terms (bias included) can be off by
    /// about (K+1) * 2^-24 of the sum of |terms|; we allow twice that.
    /// </summary>
    public const double PerTerm = 1.2e-7;

    public static float[] Random(int count, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)((rng.NextDouble() * 2) - 1) * scale;
        return values;
    }

    /// <summary>Checks every output against the double reference; the message names the first bad element.</summary>
    public static void AssertMatches(float[] x, float[] w, float[] b, int m, int k, int n, Activation act, ReadOnlySpan<float> actual, string what)
    {
        for (int i = 0; i < m; i++)
        {
            for (int o = 0; o < n; o++)
            {
                double sum = b[o], magnitude = Math.Abs(b[o]);
                for (int kk = 0; kk < k; kk++)
                {
                    double term = (double)x[(i * k) + kk] * w[(o * k) + kk];
                    sum += term;
                    magnitude += Math.Abs(term);
                }

                double preTolerance = PerTerm * (k + 1) * magnitude;
                double expected, tolerance;
                switch (act)
                {
                    case Activation.Relu:
                        expected = Math.Max(sum, 0);
                        tolerance = preTolerance + (Relative * Math.Abs(expected));
                        break;
                    case Activation.Sigmoid:
                        expected = 1 / (1 + Math.Exp(-sum));
                        // sigmoid' <= 1/4 carries the sum's error; the vectorized exp adds its own relative error.
                        tolerance = (0.25 * preTolerance) + (Relative * Math.Abs(expected)) + 1e-7;
                        break;
                    default:
                        expected = sum;
                        tolerance = preTolerance + (Relative * Math.Abs(expected));
                        break;
                }

                float got = actual[(i * n) + o];
                if (!(Math.Abs(got - expected) <= tolerance))
                {
                    Assert.Fail($"{what}: y[{i},{o}] = {got:R}, expected {expected:R} within {tolerance:E2} (M={m} K={k} N={n} {act})");
                }
            }
        }
    }
}
