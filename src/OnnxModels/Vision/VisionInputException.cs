namespace Recsys.OnnxModels.Vision;

/// <summary>A request a vision model cannot take: the field named, the HTTP status it deserves (400, 413, 422).</summary>
public sealed class VisionInputException(string field, string problem, int status = 400)
    : Exception($"{field}: {problem}")
{
    public string Field { get; } = field;
    public int Status { get; } = status;
}
