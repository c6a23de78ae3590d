using System.Globalization;

namespace Recsys.Cli.Commands;

/// <summary>
/// The options of one command: `--name value` pairs and bare `--switch`es, nothing else.
/// Every command declares the names it accepts, so a typo is an error rather than a silently
/// ignored option; every error is a <see cref="CliException"/> naming the option.
/// </summary>
public sealed class CliOptions
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _switches = new(StringComparer.Ordinal);

    private CliOptions()
    {
    }

    /// <param name="args">The arguments after the command verb.</param>
    /// <param name="valueOptions">Names taking a value, without the leading "--" (e.g. "out").</param>
    /// <param name="switchOptions">Names that take no value.</param>
    public static CliOptions Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> valueOptions, IReadOnlyCollection<string>? switchOptions = null)
    {
        var options = new CliOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2) throw new CliException($"unexpected argument '{arg}' (options are --name value)");
            string name = arg[2..];
            string? inline = null;
            int eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                inline = name[(eq + 1)..];
                name = name[..eq];
            }
            if (switchOptions?.Contains(name) == true && inline is null)
            {
                options._switches.Add(name);
                continue;
            }
            if (!valueOptions.Contains(name))
            {
                IEnumerable<string> known = valueOptions.Concat(switchOptions ?? []).Select(n => "--" + n);
                throw new CliException($"unknown option '--{name}' (known: {string.Join(", ", known)})");
            }
            string value = inline ?? (i + 1 < args.Count ? args[++i] : throw new CliException($"--{name} needs a value"));
            if (!options._values.TryAdd(name, value)) throw new CliException($"--{name} given twice");
        }
        return options;
    }

    public bool Has(string name) => _switches.Contains(name) || _values.ContainsKey(name);

    public string? Get(string name) => _values.TryGetValue(name, out string? v) ? v : null;

    public string Get(string name, string fallback) => Get(name) ?? fallback;

    public string Require(string name) => Get(name) ?? throw new CliException($"--{name} is required");

    public double GetDouble(string name, double fallback)
    {
        string? text = Get(name);
        if (text is null) return fallback;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)
            ? v
            : throw new CliException($"--{name}: '{text}' is not a number");
    }

    public long GetLong(string name, long fallback, long min = long.MinValue)
    {
        string? text = Get(name);
        if (text is null) return fallback;
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v)) throw new CliException($"--{name}: '{text}' is not an integer");
        return v >= min ? v : throw new CliException($"--{name}: {v} must be >= {min}");
    }

    public int GetInt(string name, int fallback, int min = int.MinValue)
    {
        long v = GetLong(name, fallback, min);
        return v <= int.MaxValue ? (int)v : throw new CliException($"--{name}: {v} is too large");
    }

    /// <summary>One of a fixed set of spellings, e.g. --storage fp32|fp16|int8|int4.</summary>
    public string GetChoice(string name, string fallback, IReadOnlyCollection<string> choices)
    {
        string value = Get(name, fallback);
        return choices.Contains(value) ? value : throw new CliException($"--{name}: '{value}' is not one of {string.Join(", ", choices)}");
    }
}
