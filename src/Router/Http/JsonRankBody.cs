using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.Router.Http;

/// <summary>The JSON ranking body goes through the one parser the offline `recsys rank` uses too.</summary>
internal static class JsonRankBody
{
    public static string? ReadVersion(ReadOnlySpan<byte> utf8) => throw new InvalidRequestException("Content-Type", "JSON bodies need RankRequestJson (model branch)", 415);

    public static RankBatch Parse(ReadOnlySpan<byte> utf8, DlrmSpec spec, int maxSamples) => throw new InvalidRequestException("Content-Type", "JSON bodies need RankRequestJson (model branch)", 415);
}
