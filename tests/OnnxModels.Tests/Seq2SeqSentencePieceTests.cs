using System.Text.Json.Nodes;
using Google.Protobuf;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Seq2Seq;

namespace Recsys.OnnxModels.Tests;

/// <summary>
/// A model.json naming a SentencePiece model instead of vocab.txt: text goes through
/// Microsoft.ML.Tokenizers. The model is a tiny BPE ModelProto written field by field
/// (sentencepiece_model.proto numbering), so the expected ids follow from its merges by hand.
/// </summary>
public sealed class Seq2SeqSentencePieceTests
{
    private static readonly string[] Pieces = ["<unk>", "<s>", "</s>", "\u2581", "b", "a", "l", "n", "\u2581b", "\u2581ba", "\u2581bal", "\u2581bala", "\u2581ban", "\u2581bana"];

    [Fact]
    public void Text_is_encoded_and_decoded_through_the_sentencepiece_model()
    {
        string dir = Path.Combine(Path.GetTempPath(), "seq2seq-sp-" + Guid.NewGuid().ToString("N")[..8], "m", "1");
        Directory.CreateDirectory(dir);
        try
        {
            foreach (string f in Directory.GetFiles(Seq2SeqFixture.Directory)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            File.WriteAllBytes(Path.Combine(dir, "sp.model"), BpeModel());
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "model.json")))!.AsObject();
            json.Remove("vocab");
            json["sentencepiece"] = "sp.model";
            File.WriteAllText(Path.Combine(dir, "model.json"), json.ToJsonString());

            using Seq2SeqModel model = Seq2SeqModel.Load(ModelSpec.Load(Path.Combine(dir, "model.json")));

            Assert.IsType<SentencePieceCodec>(model.Codec);
            // "bala bana" -> "▁bala▁bana"; BPE merges ▁+b, ▁b+a, ▁ba+l / ▁ba+n, then +a.
            Assert.Equal([11, 13], model.EncodeText("bala bana"));
            Assert.Equal([13, 11, 11], model.EncodeText("bana bala bala"));
            Assert.Equal("bana bala", model.Decode([13, 11]));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(Path.GetDirectoryName(dir))!, recursive: true);
        }
    }

    private static byte[] BpeModel()
    {
        using var buffer = new MemoryStream();
        var model = new CodedOutputStream(buffer);
        for (int i = 0; i < Pieces.Length; i++)
        {
            int type = i switch { 0 => 2, 1 or 2 => 3, _ => 1 }; // UNKNOWN, CONTROL, NORMAL
            model.WriteTag(1, WireFormat.WireType.LengthDelimited);
            model.WriteBytes(Message(m =>
            {
                m.WriteTag(1, WireFormat.WireType.LengthDelimited);
                m.WriteString(Pieces[i]);
                m.WriteTag(2, WireFormat.WireType.Fixed32);
                m.WriteFloat(-i);
                m.WriteTag(3, WireFormat.WireType.Varint);
                m.WriteEnum(type);
            }));
        }
        model.WriteTag(2, WireFormat.WireType.LengthDelimited);
        model.WriteBytes(Message(t =>
        {
            t.WriteTag(3, WireFormat.WireType.Varint);
            t.WriteEnum(2); // BPE
            t.WriteTag(4, WireFormat.WireType.Varint);
            t.WriteInt32(Pieces.Length);
            t.WriteTag(40, WireFormat.WireType.Varint);
            t.WriteInt32(0);
            t.WriteTag(41, WireFormat.WireType.Varint);
            t.WriteInt32(1);
            t.WriteTag(42, WireFormat.WireType.Varint);
            t.WriteInt32(2);
            t.WriteTag(43, WireFormat.WireType.Varint);
            t.WriteInt32(-1);
        }));
        model.WriteTag(3, WireFormat.WireType.LengthDelimited);
        model.WriteBytes(Message(n =>
        {
            n.WriteTag(1, WireFormat.WireType.LengthDelimited);
            n.WriteString("identity");
            n.WriteTag(3, WireFormat.WireType.Varint);
            n.WriteBool(true);
            n.WriteTag(4, WireFormat.WireType.Varint);
            n.WriteBool(true);
            n.WriteTag(5, WireFormat.WireType.Varint);
            n.WriteBool(true);
        }));
        model.Flush();
        return buffer.ToArray();
    }

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        write(output);
        output.Flush();
        return ByteString.CopyFrom(buffer.ToArray());
    }
}
