using Recsys.DenseCompute.Models;
using System.Globalization;

namespace Recsys.Cli.Bench.Workload;

/// <summary>Embedding row ids of one table: uniform, or Zipf-skewed like real categorical features.</summary>
public abstract class IdSampler
{
    protected IdSampler(long rows)
    {
        if (rows < 1) throw new ArgumentOutOfRangeException(nameof(rows), rows, "a table needs at least one row");
        Rows = rows;
    }

    public long Rows { get; }

    public abstract long Next(SplitMix rng);

    /// <summary>"uniform" or "zipf:S" (S > 0); the Zipf ranks are scattered over the table by <paramref name="seed"/>.</summary>
    public static IdSampler Parse(string text, long rows, ulong seed)
    {
        if (text == "uniform") return new UniformIds(rows);
        if (text.StartsWith("zipf:", StringComparison.Ordinal)
            && double.TryParse(text.AsSpan(5), NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s > 0 && double.IsFinite(s))
        {
            return new ZipfIds(rows, s, new IdPermutation(rows, seed));
        }
        throw new FormatException($"ids '{text}' must be uniform or zipf:S with S > 0 (e.g. zipf:0.99)");
    }
}

public sealed class UniformIds(long rows) : IdSampler(rows)
{
    public override long Next(SplitMix rng) => rng.NextLong(Rows);
}

/// <summary>
/// Zipf ids: rank k in [1, rows] has probability proportional to k^-s. The rank is drawn by
/// rejection-inversion (Hörmann and Derflinger 1996, as in Apache Commons RNG): O(1) per draw
/// and no table, so a 40M-row table costs nothing to set up, unlike a precomputed CDF. The rank
/// is then mapped through a fixed permutation so hot rows land on every shard, as hashed
/// production ids do, instead of all being the first rows of shard 0.
/// </summary>
public sealed class ZipfIds : IdSampler
{
    private readonly double _exponent;
    private readonly double _hIntegralX1;
    private readonly double _hIntegralN;
    private readonly double _s;
    private readonly IdPermutation? _permutation;

    public ZipfIds(long rows, double exponent, IdPermutation? permutation) : base(rows)
    {
        if (!(exponent > 0)) throw new ArgumentOutOfRangeException(nameof(exponent), exponent, "the Zipf exponent must be > 0");
        _exponent = exponent;
        _permutation = permutation;
        _hIntegralX1 = HIntegral(1.5) - 1.0;
        _hIntegralN = HIntegral(rows + 0.5);
        _s = 2.0 - HIntegralInverse(HIntegral(2.5) - H(2.0));
    }

    public double Exponent => _exponent;

    public override long Next(SplitMix rng)
    {
        long rank = NextRank(rng);
        return _permutation is null ? rank - 1 : _permutation.Map(rank - 1);
    }

    /// <summary>A rank in [1, rows]; 1 is the most frequent.</summary>
    public long NextRank(SplitMix rng)
    {
        while (true)
        {
            double u = _hIntegralN + rng.NextDouble() * (_hIntegralX1 - _hIntegralN);
            double x = HIntegralInverse(u);
            long k = (long)(x + 0.5);
            k = Math.Clamp(k, 1, Rows);
            // Most draws are accepted by the cheap test; the exact one only runs near the bucket edge.
            if (k - x <= _s || u >= HIntegral(k + 0.5) - H(k)) return k;
        }
    }

    // H is the integral of h(x) = x^-s, shifted so that it is well-defined at s = 1.
    private double HIntegral(double x)
    {
        double logX = Math.Log(x);
        return Helper2((1.0 - _exponent) * logX) * logX;
    }

    private double H(double x) => Math.Exp(-_exponent * Math.Log(x));

    private double HIntegralInverse(double x)
    {
        double t = Math.Max(-1.0, x * (1.0 - _exponent));
        return Math.Exp(Helper1(t) * x);
    }

    /// <summary>log(1+x)/x, with its series near 0 where the quotient loses precision.</summary>
    private static double Helper1(double x) => Math.Abs(x) > 1e-8 ? Math.Log(1.0 + x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));

    /// <summary>(exp(x)-1)/x, with its series near 0.</summary>
    private static double Helper2(double x) => Math.Abs(x) > 1e-8 ? (Math.Exp(x) - 1.0) / x : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}
