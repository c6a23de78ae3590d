using System.Globalization;

namespace Recsys.Cli.Characterize;

/// <summary>Compact number formatting for the report tables (SI prefixes, invariant culture).</summary>
internal static class Units
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>1234567 -> "1.23 M"; the unit follows the prefix ("B", "flop", "").</summary>
    public static string Si(double value, string unit = "")
    {
        if (double.IsNaN(value)) return "-";
        double a = Math.Abs(value);
        if (a > 0 && a < 1) return unit.Length == 0 ? value.ToString("G2", Inv) : $"{value.ToString("G2", Inv)} {unit}";
        (double scale, string prefix) = a switch
        {
            >= 1e12 => (1e12, "T"),
            >= 1e9 => (1e9, "G"),
            >= 1e6 => (1e6, "M"),
            >= 1e3 => (1e3, "k"),
            _ => (1, ""),
        };
        double v = value / scale;
        string number = Math.Abs(v) >= 100 || (scale == 1 && v == Math.Round(v)) ? v.ToString("F0", Inv) : Math.Abs(v) >= 10 ? v.ToString("F1", Inv) : v.ToString("F2", Inv);
        return prefix.Length + unit.Length == 0 ? number : $"{number} {prefix}{unit}";
    }

    /// <summary>Nanoseconds as µs below 10 ms, else ms.</summary>
    public static string Time(double? ns)
    {
        if (ns is not { } v) return "-";
        return v < 10e6 ? $"{(v / 1e3).ToString(v < 10e3 ? "F2" : "F1", Inv)} µs" : $"{(v / 1e6).ToString("F2", Inv)} ms";
    }

    public static string Ratio(double? value, string format = "F2") => value is { } v && double.IsFinite(v) ? v.ToString(format, Inv) : "-";

    public static string Percent(double? fraction) => fraction is { } f && double.IsFinite(f) ? (f * 100).ToString("F1", Inv) + "%" : "-";
}
