using System.Globalization;

namespace Recsys.Cli.Bench.Reporting;

/// <summary>
/// One scrape of the server's /metrics (Prometheus text format): every sample keyed by its
/// metric name and label set. Two scrapes subtract into the work done between them.
/// </summary>
public sealed class PrometheusSnapshot
{
    private readonly Dictionary<string, List<(Dictionary<string, string> Labels, double Value)>> _samples = new(StringComparer.Ordinal);

    public static PrometheusSnapshot Parse(string text)
    {
        var snapshot = new PrometheusSnapshot();
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            int brace = line.IndexOf('{', StringComparison.Ordinal);
            int space = line.LastIndexOf(' ');
            if (space <= 0) continue;
            string name;
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (brace >= 0 && brace < space)
            {
                name = line[..brace];
                int close = line.LastIndexOf('}');
                if (close < brace) continue;
                ParseLabels(line[(brace + 1)..close], labels);
            }
            else
            {
                name = line[..space];
            }
            string valueText = line[(space + 1)..];
            if (!double.TryParse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
            {
                value = valueText switch { "+Inf" => double.PositiveInfinity, "-Inf" => double.NegativeInfinity, _ => double.NaN };
            }
            if (!snapshot._samples.TryGetValue(name, out var list)) snapshot._samples[name] = list = [];
            list.Add((labels, value));
        }
        return snapshot;
    }

    /// <summary>Sum of the samples of a metric whose labels include all of <paramref name="match"/>; 0 if none.</summary>
    public double Sum(string name, params (string Label, string Value)[] match) =>
        _samples.TryGetValue(name, out var list)
            ? list.Where(s => match.All(m => s.Labels.TryGetValue(m.Label, out string? v) && v == m.Value)).Sum(s => s.Value)
            : 0;

    /// <summary>Distinct values of one label among a metric's samples that match the filter.</summary>
    public IEnumerable<string> LabelValues(string name, string label, params (string Label, string Value)[] match) =>
        _samples.TryGetValue(name, out var list)
            ? list.Where(s => match.All(m => s.Labels.TryGetValue(m.Label, out string? v) && v == m.Value))
                  .Select(s => s.Labels.GetValueOrDefault(label)).OfType<string>().Distinct().Order(StringComparer.Ordinal)
            : [];

    /// <summary>Cumulative bucket counts (le bound -> count) of a histogram for the matching labels.</summary>
    public SortedDictionary<double, double> Buckets(string histogram, params (string Label, string Value)[] match)
    {
        var buckets = new SortedDictionary<double, double>();
        if (!_samples.TryGetValue(histogram + "_bucket", out var list)) return buckets;
        foreach (var (labels, value) in list)
        {
            if (!match.All(m => labels.TryGetValue(m.Label, out string? v) && v == m.Value)) continue;
            if (!labels.TryGetValue("le", out string? le)) continue;
            double bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, NumberStyles.Float, CultureInfo.InvariantCulture);
            buckets[bound] = buckets.GetValueOrDefault(bound) + value;
        }
        return buckets;
    }

    private static void ParseLabels(string text, Dictionary<string, string> labels)
    {
        int i = 0;
        while (i < text.Length)
        {
            int eq = text.IndexOf('=', i);
            if (eq < 0 || eq + 1 >= text.Length || text[eq + 1] != '"') return;
            string key = text[i..eq].Trim().TrimStart(',').Trim();
            var value = new System.Text.StringBuilder();
            int j = eq + 2;
            for (; j < text.Length && text[j] != '"'; j++)
            {
                if (text[j] == '\\' && j + 1 < text.Length)
                {
                    j++;
                    value.Append(text[j] == 'n' ? '\n' : text[j]);
                }
                else
                {
                    value.Append(text[j]);
                }
            }
            labels[key] = value.ToString();
            i = j + 1;
            while (i < text.Length && (text[i] == ',' || text[i] == ' ')) i++;
        }
    }
}
