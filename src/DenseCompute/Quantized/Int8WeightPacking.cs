using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Quantized;

internal readonly struct Chunk1 : IRowCount { public static int Value => 1; }

internal readonly struct Chunk2 : IRowCount { public static int Value => 2; }

/// <summary>
/// Quantized weights of one layer before they are laid out for a kernel: q[n, k] = round(w / scale[n]),
/// split into a dense main part and a sparse outlier part with q = main + outlier exactly.
/// </summary>
internal sealed class Int8Weights
{
    public required int Out { get; init; }
    public required int In { get; init; }

    /// <summary>K rounded up to 8, so both chunk sizes step over whole groups; padding weights are 0.</summary>
    public required int PaddedIn { get; init; }

    public required float[] Scale { get; init; }

    /// <summary>main[n * PaddedIn + k], within the kernel's range.</summary>
    public required sbyte[] Main { get; init; }

    /// <summary>Outliers by output column: entries [Start[n], Start[n+1]) of K and Value.</summary>
    public required int[] OutlierStart { get; init; }
    public required int[] OutlierK { get; init; }
    public required int[] OutlierValue { get; init; }

    /// <summary>Σ_k q[n, k], for the zero-point correction.</summary>
    public required int[] RowSum { get; init; }

    public required int Chunk { get; init; }
}

/// <summary>
/// Per-channel symmetric weight quantization and the main/outlier split.
/// </summary>
/// <remarks>
/// Why the 16-bit kernel is exact. Its s16 lanes each add a_k * m_k over a lane set S of k (a pair
/// {4g, 4g+1} or {4g+2, 4g+3} for a chunk of one group; for two groups the pair plus the same pair of
/// group g+1). Every intermediate s16 value — each <c>vpmaddubsw</c> pair sum and each <c>vpaddsw</c> sum —
/// is a sum over a subset of S with a_k in [0, 255], so it lies in [-255 · N(S), 255 · P(S)] where P and N
/// are the sums of the positive and of the negated negative main weights in S. The packer guarantees
/// P(S) &lt;= 128 and N(S) &lt;= 128 for every lane set, so every s16 value is in [-32640, 32640] and
/// saturation never happens. With one group per chunk this holds for any main weight in [-64, 64]
/// (main is [-63, 63]); with two groups the packer moves the largest weights of a lane set that exceeds
/// the bound into the outliers. <c>vpmaddwd</c> by ones then adds two s16 values into an int32 exactly.
/// The int32 sums stay exact because every channel has 255 · Σ|q| &lt; 2^30 (checked at pack time),
/// which also bounds the zero-point correction.
/// </remarks>
internal static unsafe class Int8WeightPacking
{
    /// <summary>Pair-sum budget of a 16-bit lane set: 255 · 128 = 32640 &lt;= 32767.</summary>
    public const int LaneBudget = 128;

    public const int Madd16MainLimit = 63;
    public const int VnniLimit = 127;

    private const long MaxChannelL1 = (1L << 30) / 255;

    public static Int8Weights Quantize(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, Int8Kernel kernel, Int8Options options)
    {
        bool madd = kernel == Int8Kernel.Madd16;
        int padded = (inFeatures + 7) & ~7;
        var scale = new float[outFeatures];
        var q = new int[(long)outFeatures * padded];
        int limit = madd ? Madd16MainLimit : VnniLimit;
        for (int n = 0; n < outFeatures; n++)
        {
            ReadOnlySpan<float> row = weight.Slice(n * inFeatures, inFeatures);
            for (int k = 0; k < row.Length; k++)
            {
                if (!float.IsFinite(row[k])) throw new ArgumentException($"weight[{n}, {k}] = {row[k]} is not finite", nameof(weight));
            }

            float clip = ChannelClip(row, limit, madd, options);
            float s = clip > 0 ? clip / limit : 1f;
            scale[n] = s;
            long l1 = 0;
            for (int k = 0; k < inFeatures; k++)
            {
                // Vnni clips to the range; Madd16 keeps values beyond it whole, as outliers.
                double v = Math.Round(row[k] / (double)s, MidpointRounding.ToEven);
                if (!madd) v = Math.Clamp(v, -limit, limit);
                if (Math.Abs(v) > MaxChannelL1) throw new ArgumentException($"weight[{n}, {k}] = {row[k]} is {v} steps of the channel scale; the int32 sums could overflow (choose a wider weight range)", nameof(weight));
                int qi = (int)v;
                q[((long)n * padded) + k] = qi;
                l1 += Math.Abs(qi);
            }

            if (l1 > MaxChannelL1) throw new ArgumentException($"output channel {n}: Σ|q| = {l1} exceeds {MaxChannelL1}, int32 sums could overflow (layer too wide for int8)", nameof(weight));
        }

        var main = new sbyte[q.Length];
        var rowSum = new int[outFeatures];
        for (long i = 0; i < q.Length; i++)
        {
            main[i] = (sbyte)Math.Clamp(q[i], -limit, limit);
            rowSum[i / padded] += q[i];
        }

        int chunk = 1;
        if (madd)
        {
            chunk = options.Madd16Chunk;
            if (chunk is not (0 or 1 or 2)) throw new ArgumentOutOfRangeException(nameof(options), chunk, "Madd16Chunk must be 0 (auto), 1 or 2");
            if (chunk != 1)
            {
                sbyte[] twoGroup = (sbyte[])main.Clone();
                long moved = SplitForTwoGroups(twoGroup, outFeatures, padded);
                if (chunk == 2 || moved <= options.MaxChunkOutlierShare * outFeatures * inFeatures)
                {
                    main = twoGroup;
                    chunk = 2;
                }
                else
                {
                    chunk = 1;
                }
            }
        }

        // Outliers: whatever main does not carry.
        var start = new int[outFeatures + 1];
        var ks = new List<int>();
        var values = new List<int>();
        for (int n = 0; n < outFeatures; n++)
        {
            start[n] = ks.Count;
            for (int k = 0; k < inFeatures; k++)
            {
                long i = ((long)n * padded) + k;
                int rest = q[i] - main[i];
                if (rest == 0) continue;
                ks.Add(k);
                values.Add(rest);
            }
        }

        start[outFeatures] = ks.Count;
        return new Int8Weights
        {
            Out = outFeatures,
            In = inFeatures,
            PaddedIn = padded,
            Scale = scale,
            Main = main,
            OutlierStart = start,
            OutlierK = [.. ks],
            OutlierValue = [.. values],
            RowSum = rowSum,
            Chunk = chunk,
        };
    }

    /// <summary>
    /// Zeroes main weights (they become outliers) until every two-group lane set of every channel has
    /// positive and negative weight sums of at most <see cref="LaneBudget"/>; returns how many were moved.
    /// </summary>
    internal static long SplitForTwoGroups(sbyte[] main, int outFeatures, int padded)
    {
        long moved = 0;
        Span<int> lanes = stackalloc int[4];
        for (int n = 0; n < outFeatures; n++)
        {
            for (int k0 = 0; k0 < padded; k0 += 8)
            {
                for (int half = 0; half < 2; half++)
                {
                    int b = (n * padded) + k0 + (2 * half);
                    lanes[0] = b;
                    lanes[1] = b + 1;
                    lanes[2] = b + 4;
                    lanes[3] = b + 5;
                    moved += Enforce(main, lanes, positive: true) + Enforce(main, lanes, positive: false);
                }
            }
        }

        return moved;
    }

    private static int Enforce(sbyte[] main, ReadOnlySpan<int> lanes, bool positive)
    {
        int moved = 0;
        while (true)
        {
            int sum = 0, largest = -1;
            foreach (int i in lanes)
            {
                int v = positive ? main[i] : -main[i];
                if (v <= 0) continue;
                sum += v;
                if (largest < 0 || v > (positive ? main[largest] : -main[largest])) largest = i;
            }

            if (sum <= LaneBudget) return moved;
            main[largest] = 0;
            moved++;
        }
    }

    private static float ChannelClip(ReadOnlySpan<float> row, int limit, bool madd, Int8Options options)
    {
        if (madd && options.OutlierDensity > 0) return QuantizationRanges.OutlierThreshold(row, options.OutlierDensity);
        return options.WeightRange == WeightRangeMethod.L2
            ? QuantizationRanges.L2Optimal(row, 2 * limit, nonNegative: false, symmetric: true).Max
            : QuantizationRanges.SymmetricMinMax(row).Max;
    }

    /// <summary>
    /// The kernels' layout: 32-column panels; in panel p, group g (k = 4g..4g+3) holds 32 columns x 4
    /// bytes at p * groups * 128 + g * 128 + j * 4 + (k % 4), so one int32 lane is one column's 4 k.
    /// </summary>
    public static void Layout(Int8Weights w, sbyte* panels)
    {
        int groups = w.PaddedIn / 4;
        for (int n = 0; n < w.Out; n++)
        {
            sbyte* panel = panels + ((long)(n / 32) * groups * 128);
            int j = n % 32;
            for (int k = 0; k < w.In; k++) panel[((k / 4) * 128) + (j * 4) + (k % 4)] = w.Main[((long)n * w.PaddedIn) + k];
        }
    }
}
