namespace Recsys.DenseCompute.Models;

/// <summary>A model file is malformed or disagrees with another; the message names the file and the field.</summary>
public sealed class ModelFileException(string file, string field, string problem)
    : Exception($"{file}: {field}: {problem}")
{
    public string File { get; } = file;
    public string Field { get; } = field;
}
