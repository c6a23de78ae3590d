using Recsys.DenseCompute.Models;
using System.Globalization;

namespace Recsys.Cli.Bench.Workload;

/// <summary>
/// Samples (candidates) per query. DeepRecSys found production query sizes heavy-tailed, close
/// to lognormal; fixed and normal are there to isolate the effect of the tail.
/// Every draw is clamped to [1, max] because the server refuses larger requests.
/// </summary>
public abstract class SizeDistribution
{
    protected SizeDistribution(int max)
    {
        if (max < 1) throw new ArgumentOutOfRangeException(nameof(max), max, "the largest query size must be >= 1");
        Max = max;
    }

    public int Max { get; }

    /// <summary>The text it was parsed from, for reports.</summary>
    public required string Spec { get; init; }

    public abstract int Next(SplitMix rng);

    protected int Clamp(double size) => (int)Math.Clamp(Math.Round(size), 1, Max);

    /// <summary>fixed:N | normal:MEAN,SD | lognormal:MEAN,SD (of the sizes, not of their log) | file:PATH (one size per line).</summary>
    public static SizeDistribution Parse(string text, int max)
    {
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0) throw new FormatException($"query sizes '{text}' must be fixed:N, normal:MEAN,SD, lognormal:MEAN,SD or file:PATH");
        string kind = text[..colon], args = text[(colon + 1)..];
        return kind switch
        {
            "fixed" => new FixedSize(PositiveInt(args, text), max) { Spec = text },
            "normal" => new NormalSize(Pair(args, text), max) { Spec = text },
            "lognormal" => new LogNormalSize(Pair(args, text), max) { Spec = text },
            "file" => new FileSizes(FileSizes.Read(args), max) { Spec = text },
            _ => throw new FormatException($"query sizes '{text}': '{kind}' is not one of fixed, normal, lognormal, file"),
        };
    }

    private static int PositiveInt(string s, string whole) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1 ? v : throw new FormatException($"query sizes '{whole}': '{s}' is not an integer >= 1");

    private static (double Mean, double Sd) Pair(string s, string whole)
    {
        string[] parts = s.Split(',');
        if (parts.Length != 2
            || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double mean)
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double sd)
            || !(mean >= 1) || !(sd >= 0) || !double.IsFinite(mean) || !double.IsFinite(sd))
        {
            throw new FormatException($"query sizes '{whole}': expected MEAN,SD with MEAN >= 1 and SD >= 0");
        }
        return (mean, sd);
    }
}

public sealed class FixedSize(int size, int max) : SizeDistribution(max)
{
    public override int Next(SplitMix rng) => Clamp(size);
}

public sealed class NormalSize((double Mean, double Sd) shape, int max) : SizeDistribution(max)
{
    public override int Next(SplitMix rng) => Clamp(shape.Mean + shape.Sd * rng.NextGaussian());
}

/// <summary>Parameterised by the mean and SD of the sizes themselves, converted to the log-space mu and sigma.</summary>
public sealed class LogNormalSize : SizeDistribution
{
    private readonly double _mu, _sigma;

    public LogNormalSize((double Mean, double Sd) shape, int max) : base(max)
    {
        (double mean, double sd) = shape;
        double variance = Math.Log(1 + sd * sd / (mean * mean));
        _sigma = Math.Sqrt(variance);
        _mu = Math.Log(mean) - variance / 2;
    }

    public override int Next(SplitMix rng) => Clamp(Math.Exp(_mu + _sigma * rng.NextGaussian()));
}

/// <summary>Replays the empirical distribution of a file of sizes (e.g. a day of production query sizes), drawn at random.</summary>
public sealed class FileSizes(int[] sizes, int max) : SizeDistribution(max)
{
    public IReadOnlyList<int> Sizes => sizes;

    public override int Next(SplitMix rng) => Clamp(sizes[rng.NextLong(sizes.Length)]);

    public static int[] Read(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"query sizes file {path}: cannot read ({e.Message})");
        }
        var sizes = new List<int>();
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            sizes.Add(int.TryParse(line, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1
                ? v
                : throw new FormatException($"query sizes file {path}, line {i + 1}: '{line}' is not an integer >= 1"));
        }
        return sizes.Count > 0 ? [.. sizes] : throw new FormatException($"query sizes file {path}: no sizes (one integer per line)");
    }
}
