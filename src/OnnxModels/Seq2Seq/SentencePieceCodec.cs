using System.Text;
using Microsoft.ML.Tokenizers;
using Recsys.DenseCompute.Models;

namespace Recsys.OnnxModels.Seq2Seq;

/// <summary>
/// Subword text through Microsoft.ML.Tokenizers' SentencePiece, made to agree with the reference
/// sentencepiece library (checked against it in Seq2SeqSentencePieceGoldenTests): a run of
/// unknown characters is one unk id, and decoding follows sentencepiece's own rules from the
/// piece table. The start and end tokens are the decoder's business, not the codec's.
/// </summary>
public sealed class SentencePieceCodec : TextCodec
{
    private readonly SentencePieceTokenizer _tokenizer;
    private readonly SentencePieceTable _table;

    private SentencePieceCodec(SentencePieceTokenizer tokenizer, SentencePieceTable table)
    {
        _tokenizer = tokenizer;
        _table = table;
    }

    public static SentencePieceCodec Open(string path, string modelFile)
    {
        try
        {
            byte[] bytes = File.ReadAllBytes(path);
            SentencePieceTable table = SentencePieceTable.Read(bytes);
            using var stream = new MemoryStream(bytes, writable: false);
            return new SentencePieceCodec(SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false), table);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new ModelFileException(modelFile, "sentencepiece", $"{Path.GetFileName(path)} is not a SentencePiece model: {e.Message}");
        }
    }

    public override int[] Encode(string text)
    {
        IReadOnlyList<int> ids = _tokenizer.EncodeToIds(text);
        // Microsoft.ML.Tokenizers gives one unk per unknown character; sentencepiece merges a
        // run of them into one piece, and the model was trained on sentencepiece's ids.
        int unk = _table.UnknownId, n = 0;
        var result = new int[ids.Count];
        for (int i = 0; i < ids.Count; i++)
        {
            if (ids[i] == unk && n > 0 && result[n - 1] == unk) continue;
            result[n++] = ids[i];
        }
        return n == result.Length ? result : result[..n];
    }

    public override string Decode(ReadOnlySpan<int> ids)
    {
        // Microsoft.ML.Tokenizers drops unk on decode; sentencepiece writes unk_surface (" ⁇ ").
        if (!_table.DecodesItself) return _tokenizer.Decode(ids.ToArray());
        var text = new StringBuilder(ids.Length * 4);
        bool atStart = true;
        foreach (int id in ids)
        {
            string surface = _table.Surface(id, atStart);
            text.Append(surface);
            if (surface.Length > 0) atStart = false;
        }
        return text.ToString();
    }
}
