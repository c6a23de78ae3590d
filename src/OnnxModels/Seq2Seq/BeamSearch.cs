namespace Recsys.OnnxModels.Seq2Seq;

/// <summary>
/// The beam of one request, advanced one token per decoder step. A shrinking beam: each step keeps
/// the (beam - finished) best continuations by summed log-prob (ties: lower hypothesis, then lower
/// token id), and a continuation that is the end token finishes. Done when beam hypotheses have
/// finished, none is left, or max length is reached (the live ones then finish as they stand).
/// The same rules as beam_search in tools/make_seq2seq_fixtures.py.
/// </summary>
internal sealed class BeamSearch
{
    private readonly DecodeOptions _options;

    private readonly int _endId;
    private readonly List<(int[] Tokens, double LogProb, bool Ended)> _finished = [];
    private int[][] _live;
    private double[] _scores;

    // Selection scratch, sized for the beam: the best candidates seen so far, best first.
    private readonly double[] _bestScore;
    private readonly int[] _bestIndex;

    public BeamSearch(DecodeOptions options, int startId, int endId)
    {
        _options = options;
        _endId = endId;
        StartId = startId;
        _live = [[]];
        _scores = [0];
        _bestScore = new double[options.Beam];
        _bestIndex = new int[options.Beam];
    }

    public int StartId { get; }

    public DecodeOptions Options => _options;

    /// <summary>Live hypotheses: the rows this request occupies in the next decoder step.</summary>
    public int LiveCount => _live.Length;

    public int Steps { get; private set; }

    public bool Done { get; private set; }

    /// <summary>The token each live hypothesis feeds into the next step.</summary>
    public int PreviousToken(int hypothesis) => _live[hypothesis] is { Length: > 0 } t ? t[^1] : StartId;

    /// <summary>
    /// Takes this request's rows of the step's log-probs (LiveCount x vocabulary) and writes, for
    /// each new live hypothesis in order, the old hypothesis whose state it continues.
    /// Returns the new live count.
    /// </summary>
    public int Advance(ReadOnlySpan<float> logProbs, int vocabulary, Span<int> parents)
    {
        int width = _options.Beam - _finished.Count;
        int found = SelectBest(logProbs, vocabulary, width);
        var live = new List<int[]>(found);
        var scores = new List<double>(found);
        int kept = 0;
        for (int i = 0; i < found; i++)
        {
            (int parent, int token) = Math.DivRem(_bestIndex[i], vocabulary);
            int[] previous = _live[parent];
            var tokens = new int[previous.Length + 1];
            previous.CopyTo(tokens, 0);
            tokens[^1] = token;
            if (token == _endId)
            {
                _finished.Add((tokens, _bestScore[i], true));
                continue;
            }
            live.Add(tokens);
            scores.Add(_bestScore[i]);
            parents[kept++] = parent;
        }
        Steps++;
        _live = [.. live];
        _scores = [.. scores];
        if (_finished.Count >= _options.Beam || kept == 0)
        {
            Done = true;
        }
        else if (Steps >= _options.MaxLength)
        {
            for (int i = 0; i < _live.Length; i++) _finished.Add((_live[i], _scores[i], false));
            Done = true;
        }
        if (Done) _live = [];
        return _live.Length;
    }

    /// <summary>Top <paramref name="width"/> of (score + log-prob) over every live hypothesis and token, by insertion into a short sorted list.</summary>
    private int SelectBest(ReadOnlySpan<float> logProbs, int vocabulary, int width)
    {
        int count = 0;
        for (int h = 0; h < _live.Length; h++)
        {
            double basis = _scores[h];
            ReadOnlySpan<float> row = logProbs.Slice(h * vocabulary, vocabulary);
            for (int v = 0; v < row.Length; v++)
            {
                double s = basis + row[v];
                // Candidates come in ascending flat index, so an equal score never displaces an earlier one.
                if (count == width && !(s > _bestScore[count - 1])) continue;
                int at = count < width ? count++ : count - 1;
                while (at > 0 && s > _bestScore[at - 1])
                {
                    _bestScore[at] = _bestScore[at - 1];
                    _bestIndex[at] = _bestIndex[at - 1];
                    at--;
                }
                _bestScore[at] = s;
                _bestIndex[at] = h * vocabulary + v;
            }
        }
        return count;
    }

    /// <summary>The n best finished hypotheses by length-normalized score (ties: the one finished first).</summary>
    public DecodeResult Result()
    {
        var ranked = _finished
            .Select((f, order) => (f, order, score: _options.Normalize(f.LogProb, f.Tokens.Length)))
            .OrderByDescending(x => x.score)
            .ThenBy(x => x.order)
            .Take(_options.NBest)
            .Select(x => new Hypothesis(x.f.Ended ? x.f.Tokens[..^1] : x.f.Tokens, x.score, x.f.LogProb, x.f.Ended))
            .ToList();
        return new DecodeResult(ranked, Steps);
    }
}
