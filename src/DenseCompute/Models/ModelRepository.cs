namespace Recsys.DenseCompute.Models;

/// <summary>
/// The on-disk model repository: models/&lt;name&gt;/&lt;version&gt;/model.json. Versions are
/// directory names; numeric ones order numerically and the highest is the newest.
/// </summary>
public sealed class ModelRepository(string root)
{
    public string Root { get; } = Path.GetFullPath(root);

    public IReadOnlyList<string> ModelNames() =>
        !System.IO.Directory.Exists(Root)
            ? []
            : System.IO.Directory.GetDirectories(Root)
                .Where(d => Versions(Path.GetFileName(d)).Count > 0)
                .Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();

    /// <summary>Versions of a model that have a model.json, oldest first.</summary>
    public IReadOnlyList<string> Versions(string model)
    {
        string dir = Path.Combine(Root, model);
        if (!IsSafeName(model) || !System.IO.Directory.Exists(dir)) return [];
        return System.IO.Directory.GetDirectories(dir)
            .Where(v => File.Exists(Path.Combine(v, "model.json")))
            .Select(Path.GetFileName).OfType<string>()
            .OrderBy(v => long.TryParse(v, out long n) ? n : long.MaxValue)
            .ThenBy(v => v, StringComparer.Ordinal)
            .ToList();
    }

    public string? NewestVersion(string model)
    {
        IReadOnlyList<string> versions = Versions(model);
        return versions.Count == 0 ? null : versions[^1];
    }

    public string VersionDirectory(string model, string version)
    {
        if (!IsSafeName(model)) throw new ArgumentException($"model name '{model}' is not a plain directory name", nameof(model));
        if (!IsSafeName(version)) throw new ArgumentException($"version '{version}' is not a plain directory name", nameof(version));
        return Path.Combine(Root, model, version);
    }

    public ModelSpec LoadSpec(string model, string version) => ModelSpec.Load(Path.Combine(VersionDirectory(model, version), "model.json"));

    /// <summary>Names come from URLs: refuse anything that could walk out of the repository.</summary>
    public static bool IsSafeName(string name) =>
        name.Length is > 0 and <= 128 && name != "." && name != ".." &&
        name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
