using System.Diagnostics.CodeAnalysis;

namespace Recsys.EmbeddingGrains.Sharding;

/// <summary>
/// Checks of a CSR bag request shared by the splitter and the shard. Throws ArgumentException
/// naming the field and position, so a caller can fix its request; nothing is left half-done.
/// </summary>
public static class RequestValidation
{
    public static void ValidateCsr(int idCount, ReadOnlySpan<int> offsets, ReadOnlySpan<float> weights)
    {
        if (offsets.Length < 1) throw new ArgumentException("Offsets needs Bags + 1 entries (at least one)", "Offsets");
        if (offsets[0] != 0) throw new ArgumentException($"Offsets[0] is {offsets[0]}, must be 0", "Offsets");
        for (int b = 1; b < offsets.Length; b++)
        {
            if (offsets[b] < offsets[b - 1])
            {
                throw new ArgumentException($"Offsets are not monotonic at bag {b - 1}: Offsets[{b - 1}] = {offsets[b - 1]} > Offsets[{b}] = {offsets[b]}", "Offsets");
            }
        }
        if (offsets[^1] != idCount)
        {
            throw new ArgumentException($"Offsets[{offsets.Length - 1}] is {offsets[^1]}, must equal the number of Ids ({idCount})", "Offsets");
        }
        if (!weights.IsEmpty && weights.Length != idCount)
        {
            throw new ArgumentException($"Weights has {weights.Length} entries for {idCount} Ids (give one weight per id, or none)", "Weights");
        }
    }

    [DoesNotReturn]
    public static void ThrowIdOutOfRange(int position, long id, long rows) =>
        throw new ArgumentOutOfRangeException("Ids", id, $"Ids[{position}] = {id} is outside the table's rows [0, {rows})");
}
