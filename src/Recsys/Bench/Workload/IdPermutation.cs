using Recsys.DenseCompute.Models;

namespace Recsys.Cli.Bench.Workload;

/// <summary>
/// A seeded bijection of [0, n): a 4-round Feistel network on the smallest even power of two
/// covering n, with cycle-walking for values that land outside [0, n). Stateless and O(1)
/// expected per call, so it can scatter Zipf ranks over billions of rows without a table.
/// </summary>
public sealed class IdPermutation
{
    private const int Rounds = 4;
    private readonly long _n;
    private readonly int _halfBits;
    private readonly ulong _halfMask;
    private readonly ulong[] _keys = new ulong[Rounds];

    public IdPermutation(long n, ulong seed)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "the permuted range needs at least one value");
        _n = n;
        int bits = Math.Max(2, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(n - 1)));
        _halfBits = (bits + 1) / 2;
        _halfMask = (1UL << _halfBits) - 1;
        var rng = new SplitMix(seed);
        for (int i = 0; i < Rounds; i++) _keys[i] = rng.Next();
    }

    public long Map(long value)
    {
        if ((ulong)value >= (ulong)_n) throw new ArgumentOutOfRangeException(nameof(value), value, $"must be in [0, {_n})");
        ulong x = (ulong)value;
        // The network permutes [0, 4^halfBits), at most 4n values: the walk ends after a few steps on average.
        do
        {
            x = Encrypt(x);
        }
        while (x >= (ulong)_n);
        return (long)x;
    }

    private ulong Encrypt(ulong x)
    {
        ulong left = x >> _halfBits, right = x & _halfMask;
        for (int i = 0; i < Rounds; i++)
        {
            ulong next = left ^ (Mix(right ^ _keys[i]) & _halfMask);
            left = right;
            right = next;
        }
        return (left << _halfBits) | right;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
