using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.OnnxModels.Seq2Seq;

/// <summary>A loaded seq2seq model: its spec, checked graphs, text codec and the request checks every entry point shares.</summary>
public sealed class Seq2SeqModel : IDisposable
{
    private Seq2SeqModel(Seq2SeqSpec spec, Seq2SeqGraphs graphs, TextCodec? codec)
    {
        Spec = spec;
        Graphs = graphs;
        Codec = codec;
    }

    public Seq2SeqSpec Spec { get; }
    public Seq2SeqGraphs Graphs { get; }

    /// <summary>Null when model.json names no vocabulary or SentencePiece model: ids only.</summary>
    public TextCodec? Codec { get; }

    /// <exception cref="ModelFileException">model.json, a graph or the tokenizer file is wrong.</exception>
    public static Seq2SeqModel Load(ModelSpec modelSpec)
    {
        Seq2SeqSpec spec = Seq2SeqSpec.From(modelSpec);
        Seq2SeqGraphs graphs = Seq2SeqGraphs.Open(spec.EncoderPath, spec.DecoderPath);
        try
        {
            int v = graphs.Vocabulary;
            foreach ((string field, int id) in new[] { ("pad_id", spec.PadId), ("start_id", spec.StartId), ("end_id", spec.EndId), ("unk_id", spec.UnkId) })
            {
                if (id >= v) throw new ModelFileException(spec.File, field, $"is {id}, the decoder's vocabulary has {v} entries");
            }
            return new Seq2SeqModel(spec, graphs, TextCodec.Open(spec, v));
        }
        catch
        {
            graphs.Dispose();
            throw;
        }
    }

    public DecodeBatch CreateBatch() => new(Graphs, Spec);

    /// <summary>Request options over the model's defaults; errors name the option.</summary>
    public DecodeOptions Options(int? beam = null, int? maxLength = null, int? nBest = null, double? lengthPenalty = null)
    {
        int b = beam ?? Math.Min(Spec.DefaultBeam, Spec.MaxBeam);
        if (b < 1 || b > Spec.MaxBeam) throw new InvalidRequestException("beam", $"is {b}, must be in [1, {Spec.MaxBeam}]");
        int max = maxLength ?? Spec.MaxLength;
        if (max < 1 || max > Spec.MaxLength) throw new InvalidRequestException("max_length", $"is {max}, must be in [1, {Spec.MaxLength}] (the model's max_length)");
        int n = nBest ?? 1;
        if (n < 1 || n > b) throw new InvalidRequestException("n_best", $"is {n}, must be in [1, beam = {b}]");
        double alpha = lengthPenalty ?? Spec.DefaultLengthPenalty;
        if (!(alpha >= 0 && alpha <= 10)) throw new InvalidRequestException("length_penalty", $"is {alpha}, must be in [0, 10]");
        return new DecodeOptions(b, max, n, alpha);
    }

    /// <summary>Source ids from text through the model's codec.</summary>
    public int[] EncodeText(string text)
    {
        if (Codec is null) throw new InvalidRequestException("text", "this model ships no vocabulary or tokenizer: send token ids in \"ids\"");
        if (string.IsNullOrWhiteSpace(text)) throw new InvalidRequestException("text", "is empty");
        int[] ids = Codec.Encode(text);
        if (ids.Length == 0) throw new InvalidRequestException("text", "has no tokens");
        if (ids.Length > Spec.MaxSourceLength) throw new InvalidRequestException("text", $"has {ids.Length} tokens, the model's max_source_length is {Spec.MaxSourceLength}", 422);
        // A tokenizer file larger than the graph's vocabulary would otherwise reach the encoder's embedding lookup.
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)Graphs.Vocabulary) throw new InvalidRequestException("text", $"token {i} has id {ids[i]}, outside the model's vocabulary [0, {Graphs.Vocabulary})", 422);
        }
        return ids;
    }

    /// <summary>Checks source ids given directly: non-empty, within the length limit, each in [0, V).</summary>
    public void CheckSource(ReadOnlySpan<int> ids, string field = "ids")
    {
        if (ids.IsEmpty) throw new InvalidRequestException(field, "is empty");
        if (ids.Length > Spec.MaxSourceLength) throw new InvalidRequestException(field, $"has {ids.Length} tokens, the model's max_source_length is {Spec.MaxSourceLength}", 422);
        int v = Graphs.Vocabulary;
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)v) throw new InvalidRequestException($"{field}[{i}]", $"token id {ids[i]} is outside the vocabulary [0, {v})", 422);
        }
    }

    public string? Decode(ReadOnlySpan<int> ids) => Codec?.Decode(ids);

    public void Dispose() => Graphs.Dispose();
}
