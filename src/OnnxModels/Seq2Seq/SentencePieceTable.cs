using Google.Protobuf;

namespace Recsys.OnnxModels.Seq2Seq;

/// <summary>
/// The pieces of a SentencePiece ModelProto (sentencepiece_model.proto field numbers) with their
/// types and the few normalizer and trainer settings decoding depends on: Microsoft.ML.Tokenizers
/// does not expose the piece types, and its decode of unknown pieces differs from sentencepiece's.
/// </summary>
internal sealed class SentencePieceTable
{
    private const char WordMarker = '\u2581';

    private enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    private readonly string[] _pieces;
    private readonly PieceType[] _types;
    private readonly string _unknownSurface;
    private readonly bool _stripLeadingMarker;

    private SentencePieceTable(string[] pieces, PieceType[] types, string unknownSurface, bool stripLeadingMarker, bool decodesItself)
    {
        _pieces = pieces;
        _types = types;
        _unknownSurface = unknownSurface;
        _stripLeadingMarker = stripLeadingMarker;
        DecodesItself = decodesItself;
        UnknownId = Array.IndexOf(types, PieceType.Unknown);
    }

    public int UnknownId { get; }

    /// <summary>
    /// False for byte-fallback or whitespace-as-suffix models, whose decoding is left to
    /// Microsoft.ML.Tokenizers (no test model of that kind here, so no rules of ours for it).
    /// </summary>
    public bool DecodesItself { get; }

    /// <summary>What sentencepiece's decoder writes for one id: controls vanish, unk is unk_surface, the word marker is a space except at the start.</summary>
    public string Surface(int id, bool atStart)
    {
        if ((uint)id >= (uint)_pieces.Length) return "";
        string piece = _pieces[id];
        switch (_types[id])
        {
            case PieceType.Control:
                return "";
            case PieceType.Unknown:
                return _unknownSurface;
        }
        if (atStart && _stripLeadingMarker && piece.Length > 0 && piece[0] == WordMarker) piece = piece[1..];
        return piece.Replace(WordMarker, ' ');
    }

    public static SentencePieceTable Read(byte[] model)
    {
        var pieces = new List<string>();
        var types = new List<PieceType>();
        string unknownSurface = " \u2047 ";
        bool addDummyPrefix = true, removeExtraWhitespaces = true, whitespaceAsSuffix = false, byteFallback = false;
        var input = new CodedInputStream(model);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1:
                    (string piece, PieceType type) = ReadPiece(input.ReadBytes());
                    pieces.Add(piece);
                    types.Add(type);
                    break;
                case 2:
                    ReadTrainer(input.ReadBytes(), ref unknownSurface, ref whitespaceAsSuffix, ref byteFallback);
                    break;
                case 3:
                    ReadNormalizer(input.ReadBytes(), ref addDummyPrefix, ref removeExtraWhitespaces);
                    break;
                default:
                    input.SkipLastField();
                    break;
            }
        }
        if (pieces.Count == 0) throw new InvalidDataException("the model has no pieces");
        bool decodesItself = !whitespaceAsSuffix && !byteFallback && !types.Contains(PieceType.Byte);
        return new SentencePieceTable([.. pieces], [.. types], unknownSurface, addDummyPrefix || removeExtraWhitespaces, decodesItself);
    }

    private static (string Piece, PieceType Type) ReadPiece(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        string piece = "";
        var type = PieceType.Normal;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: piece = input.ReadString(); break;
                case 3: type = (PieceType)input.ReadEnum(); break;
                default: input.SkipLastField(); break;
            }
        }
        return (piece, type);
    }

    private static void ReadTrainer(ByteString bytes, ref string unknownSurface, ref bool whitespaceAsSuffix, ref bool byteFallback)
    {
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 24: whitespaceAsSuffix = input.ReadBool(); break;
                case 35: byteFallback = input.ReadBool(); break;
                case 44: unknownSurface = input.ReadString(); break;
                default: input.SkipLastField(); break;
            }
        }
    }

    private static void ReadNormalizer(ByteString bytes, ref bool addDummyPrefix, ref bool removeExtraWhitespaces)
    {
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 3: addDummyPrefix = input.ReadBool(); break;
                case 4: removeExtraWhitespaces = input.ReadBool(); break;
                default: input.SkipLastField(); break;
            }
        }
    }
}
