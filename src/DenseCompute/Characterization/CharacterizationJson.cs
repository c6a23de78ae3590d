using System.Text.Json;
using System.Text.Json.Serialization;

namespace Recsys.DenseCompute.Characterization;

/// <summary>The report as JSON (snake_case, enums as strings, absent measurements as null): what `--json` prints and the profile endpoint returns.</summary>
public static class CharacterizationJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Serialize(CharacterizationReport report) => JsonSerializer.Serialize(report, Options);
}
