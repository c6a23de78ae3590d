using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;

namespace Recsys.OnnxModels.Seq2Seq;

/// <summary>Turns request text into source ids and output ids back into text.</summary>
public abstract class TextCodec
{
    /// <exception cref="InvalidRequestException">A word the model cannot represent (field "text").</exception>
    public abstract int[] Encode(string text);

    public abstract string Decode(ReadOnlySpan<int> ids);

    /// <summary>The codec model.json names: a SentencePiece model, a vocabulary file, or none (ids only).</summary>
    public static TextCodec? Open(Seq2SeqSpec spec, int vocabulary)
    {
        if (spec.SentencePiecePath is { } sp) return SentencePieceCodec.Open(sp, spec.File);
        if (spec.VocabularyPath is { } vocab) return VocabularyCodec.Open(vocab, spec.File, vocabulary, spec.UnkId);
        return null;
    }
}

/// <summary>
/// Word-level text: tokens are separated by whitespace and looked up in vocab.txt (line n is id n);
/// unknown words become unk_id, or are refused when the model has none.
/// </summary>
public sealed class VocabularyCodec : TextCodec
{
    private readonly string[] _tokens;
    private readonly Dictionary<string, int> _ids;
    private readonly int _unk;

    private VocabularyCodec(string[] tokens, int unk)
    {
        _tokens = tokens;
        _unk = unk;
        _ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++) _ids.TryAdd(tokens[i], i);
    }

    public int Count => _tokens.Length;

    public static VocabularyCodec Open(string path, string modelFile, int vocabulary, int unk)
    {
        string[] tokens = File.ReadAllLines(path);
        if (tokens.Length > 0 && tokens[^1].Length == 0) tokens = tokens[..^1];
        string name = Path.GetFileName(path);
        if (tokens.Length != vocabulary) throw new ModelFileException(modelFile, "vocab", $"{name} has {tokens.Length} tokens, the decoder's log_probs has {vocabulary}");
        for (int i = 0; i < tokens.Length; i++)
        {
            if (tokens[i].Length == 0 || tokens[i].Any(char.IsWhiteSpace)) throw new ModelFileException(modelFile, "vocab", $"{name} line {i + 1}: a token must be non-empty and without whitespace");
        }
        if (unk >= tokens.Length) throw new ModelFileException(modelFile, "unk_id", $"is {unk}, {name} has {tokens.Length} tokens");
        return new VocabularyCodec(tokens, unk);
    }

    public override int[] Encode(string text)
    {
        string[] words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[words.Length];
        for (int i = 0; i < words.Length; i++)
        {
            if (_ids.TryGetValue(words[i], out int id)) ids[i] = id;
            else if (_unk >= 0) ids[i] = _unk;
            else throw new InvalidRequestException("text", $"word {i} '{words[i]}' is not in the model's vocabulary", 422);
        }
        return ids;
    }

    public override string Decode(ReadOnlySpan<int> ids)
    {
        var parts = new string[ids.Length];
        for (int i = 0; i < ids.Length; i++) parts[i] = (uint)ids[i] < (uint)_tokens.Length ? _tokens[ids[i]] : "<?>";
        return string.Join(' ', parts);
    }
}
