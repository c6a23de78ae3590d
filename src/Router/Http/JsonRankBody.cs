using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.Router.Http;

/// <summary>The JSON ranking body goes through the one parser `recsys rank` uses too (<see cref="RankRequestJson"/>).</summary>
internal static class JsonRankBody
{
    public static string? ReadVersion(ReadOnlySpan<byte> utf8) => RankRequestJson.ReadVersion(utf8);

    public static RankBatch Parse(ReadOnlySpan<byte> utf8, DlrmSpec spec, int maxSamples) => new RankRequestJson(spec, maxSamples).Parse(utf8);
}
