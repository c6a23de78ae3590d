using System.Text.Json.Nodes;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Seq2Seq;

namespace Recsys.OnnxModels.Tests;

/// <summary>The toy GRU translation model and its PyTorch reference decodes (tools/make_seq2seq_fixtures.py).</summary>
public sealed class Seq2SeqFixture : IDisposable
{
    public const double ScoreTolerance = 1e-3;

    public static string Directory => Path.Combine(AppContext.BaseDirectory, "fixtures", "seq2seq", "toy", "1");

    public Seq2SeqFixture()
    {
        Model = Seq2SeqModel.Load(ModelSpec.Load(Path.Combine(Directory, "model.json")));
        Cases = ReferenceCase.Load(Path.Combine(Directory, "reference.json"));
    }

    public Seq2SeqModel Model { get; }
    public IReadOnlyList<ReferenceCase> Cases { get; }

    public void Dispose() => Model.Dispose();

    /// <summary>Token for token equal ids and finished flags, scores within tolerance, in n-best order.</summary>
    public static void AssertMatches(ReferenceCase expected, DecodeResult actual)
    {
        Assert.Equal(expected.Hypotheses.Count, actual.Hypotheses.Count);
        for (int i = 0; i < expected.Hypotheses.Count; i++)
        {
            ReferenceHypothesis e = expected.Hypotheses[i];
            Hypothesis a = actual.Hypotheses[i];
            Assert.True(e.Ids.SequenceEqual(a.Ids), $"source [{string.Join(' ', expected.Source)}] beam {expected.Beam} hypothesis {i}: expected [{string.Join(' ', e.Ids)}], got [{string.Join(' ', a.Ids)}]");
            Assert.Equal(e.Finished, a.Finished);
            Assert.True(Math.Abs(e.Score - a.Score) <= ScoreTolerance, $"hypothesis {i}: score {a.Score}, reference {e.Score}");
            Assert.True(Math.Abs(e.LogProb - a.LogProb) <= ScoreTolerance, $"hypothesis {i}: log-prob {a.LogProb}, reference {e.LogProb}");
        }
    }
}

public sealed record ReferenceHypothesis(int[] Ids, double Score, double LogProb, bool Finished);

public sealed record ReferenceCase(int[] Source, string Text, int Beam, int MaxLength, double LengthPenalty, int NBest, IReadOnlyList<ReferenceHypothesis> Hypotheses, IReadOnlyList<string> Texts)
{
    public DecodeOptions Options => new(Beam, MaxLength, NBest, LengthPenalty);

    public override string ToString() => $"{Source.Length} tokens, beam {Beam}";

    public static IReadOnlyList<ReferenceCase> Load(string path)
    {
        JsonArray cases = JsonNode.Parse(File.ReadAllText(path))!["cases"]!.AsArray();
        return [.. cases.Select(c => new ReferenceCase(
            Ints(c!["source"]!),
            c["text"]!.GetValue<string>(),
            c["beam"]!.GetValue<int>(),
            c["max_length"]!.GetValue<int>(),
            c["length_penalty"]!.GetValue<double>(),
            c["n_best"]!.GetValue<int>(),
            [.. c["hypotheses"]!.AsArray().Select(h => new ReferenceHypothesis(Ints(h!["ids"]!), h["score"]!.GetValue<double>(), h["log_prob"]!.GetValue<double>(), h["finished"]!.GetValue<bool>()))],
            [.. c["texts"]!.AsArray().Select(t => t!.GetValue<string>())]))];
    }

    private static int[] Ints(JsonNode node) => [.. node.AsArray().Select(x => x!.GetValue<int>())];
}
