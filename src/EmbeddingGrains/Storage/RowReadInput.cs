namespace Recsys.EmbeddingGrains.Storage;

/// <summary>
/// What a FASTER read does with the row it finds: add Weight x row into Accumulator (Dim floats
/// of the caller's pinned bag sum) and, when the cache admitted the row, copy its encoded bytes
/// to AdmitTo. FASTER copies the input into its pending context, so the pointers must stay valid
/// (pinned) until the read completes, including reads that go to disk.
/// </summary>
internal unsafe struct RowReadInput
{
    public float* Accumulator;
    public float Weight;
    public byte* AdmitTo;
}
