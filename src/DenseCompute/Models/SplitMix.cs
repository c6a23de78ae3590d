namespace Recsys.DenseCompute.Models;

/// <summary>
/// SplitMix64: a seeded stream that is the same on every runtime (System.Random's seeded
/// sequence is not a documented contract), so demo models, synthetic data and a load run's
/// arrivals and ids can be replayed. One instance per thread: it is not thread-safe.
/// </summary>
public sealed class SplitMix(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, n) without modulo bias worth mentioning for n far below 2^64.</summary>
    public long NextLong(long n) => (long)(NextDouble() * n);

    /// <summary>Standard normal (Box-Muller; the second value of the pair is dropped to keep the stream simple).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>A child stream for another table or thread, independent of this one's later draws.</summary>
    public SplitMix Fork() => new(Next());
}
