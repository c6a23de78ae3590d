namespace Recsys.OnnxModels.Seq2Seq;

/// <summary>How one request is decoded. Beam 1 is greedy decoding.</summary>
/// <param name="Beam">Hypotheses kept per step.</param>
/// <param name="MaxLength">Most tokens generated per hypothesis, the end token included.</param>
/// <param name="NBest">Hypotheses returned, best first; at most Beam.</param>
/// <param name="LengthPenalty">Alpha of the GNMT penalty ((5 + length) / 6)^alpha that divides a finished hypothesis' log-prob.</param>
public sealed record DecodeOptions(int Beam, int MaxLength, int NBest, double LengthPenalty)
{
    public double Normalize(double logProb, int length) => LengthPenalty == 0 ? logProb : logProb / Math.Pow((5.0 + length) / 6.0, LengthPenalty);
}

/// <summary>One decoded output: ids without the start and end tokens.</summary>
/// <param name="Score">Log-prob divided by the length penalty (what ranks the n-best).</param>
/// <param name="LogProb">Sum of the token log-probs, the end token included.</param>
/// <param name="Finished">True when it ended with the end token, false when cut at max length.</param>
public sealed record Hypothesis(int[] Ids, double Score, double LogProb, bool Finished);

/// <summary>The answer of one request: the n-best hypotheses, and how many decoder steps it took part in.</summary>
public sealed record DecodeResult(IReadOnlyList<Hypothesis> Hypotheses, int Steps);
