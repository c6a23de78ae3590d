using System.Text.Json;
using Recsys.DenseCompute.Models;

namespace Recsys.OnnxModels.Seq2Seq;

/// <summary>
/// The model.json of a kind "seq2seq" model: the two graphs, the special token ids, the length
/// limits, the decoding defaults and the tokenizer. Checked here so a bad file fails at load with
/// the file and field named; the graphs themselves are checked by <see cref="Seq2SeqGraphs"/>.
/// </summary>
public sealed record Seq2SeqSpec
{
    public const string Kind = "seq2seq";

    /// <summary>Beam widths above this are refused at load and per request: cost grows with the width, quality does not.</summary>
    public const int BeamCap = 16;

    public required string File { get; init; }
    public required string EncoderPath { get; init; }
    public required string DecoderPath { get; init; }

    /// <summary>A word-level vocabulary (one token per line, line number = id), or null.</summary>
    public string? VocabularyPath { get; init; }

    /// <summary>A SentencePiece model (protobuf), or null.</summary>
    public string? SentencePiecePath { get; init; }

    public int PadId { get; init; }
    public int StartId { get; init; }
    public int EndId { get; init; }

    /// <summary>Id that unknown words of a text map to; -1 refuses such texts instead.</summary>
    public int UnkId { get; init; } = -1;

    /// <summary>Most tokens one hypothesis may generate, the end token included.</summary>
    public int MaxLength { get; init; }

    /// <summary>Longest source, in tokens.</summary>
    public int MaxSourceLength { get; init; }

    public int DefaultBeam { get; init; } = 4;
    public double DefaultLengthPenalty { get; init; } = 0.6;
    public int MaxBeam { get; init; } = BeamCap;

    /// <summary>Hypotheses one decoder step may carry (the batch's rows); arrivals wait for room.</summary>
    public int MaxBatchRows { get; init; } = 64;

    /// <summary>Requests that may wait to join the batch before new ones are refused.</summary>
    public int MaxQueued { get; init; } = 1024;

    public static Seq2SeqSpec From(ModelSpec spec)
    {
        if (spec.Kind != Kind) throw new ModelFileException(spec.File, "kind", $"is '{spec.Kind}', '{Kind}' was expected");
        var r = new Fields(spec.Root, spec.File);
        string dir = spec.Directory;
        string? vocab = r.OptionalString("vocab");
        string? sentencePiece = r.OptionalString("sentencepiece");
        if (vocab is not null && sentencePiece is not null) throw new ModelFileException(spec.File, "sentencepiece", "give either vocab or sentencepiece, not both");
        int maxLength = r.Int("max_length", min: 1, max: 4096, fallback: null);
        var result = new Seq2SeqSpec
        {
            File = spec.File,
            EncoderPath = r.ExistingFile("encoder", dir, "encoder.onnx"),
            DecoderPath = r.ExistingFile("decoder", dir, "decoder.onnx"),
            VocabularyPath = vocab is null ? null : r.ExistingFile("vocab", dir, null),
            SentencePiecePath = sentencePiece is null ? null : r.ExistingFile("sentencepiece", dir, null),
            PadId = r.Int("pad_id", min: 0, max: int.MaxValue, fallback: null),
            StartId = r.Int("start_id", min: 0, max: int.MaxValue, fallback: null),
            EndId = r.Int("end_id", min: 0, max: int.MaxValue, fallback: null),
            UnkId = r.Int("unk_id", min: -1, max: int.MaxValue, fallback: -1),
            MaxLength = maxLength,
            MaxSourceLength = r.Int("max_source_length", min: 1, max: 1 << 16, fallback: 256),
            DefaultBeam = r.Int("beam", min: 1, max: BeamCap, fallback: 4),
            DefaultLengthPenalty = r.Double("length_penalty", min: 0, max: 10, fallback: 0.6),
            MaxBeam = r.Int("max_beam", min: 1, max: BeamCap, fallback: BeamCap),
            MaxBatchRows = r.Int("max_batch_rows", min: 1, max: 4096, fallback: 64),
            MaxQueued = r.Int("max_queued", min: 1, max: 1 << 20, fallback: 1024),
        };
        if (result.StartId == result.EndId) throw new ModelFileException(spec.File, "end_id", $"is {result.EndId}, the same as start_id");
        if (result.DefaultBeam > result.MaxBeam) throw new ModelFileException(spec.File, "beam", $"is {result.DefaultBeam}, above max_beam {result.MaxBeam}");
        if (result.MaxBeam > result.MaxBatchRows) throw new ModelFileException(spec.File, "max_batch_rows", $"is {result.MaxBatchRows}, smaller than max_beam {result.MaxBeam}: a request at the widest beam could never join a step");
        return result;
    }

    /// <summary>Typed fields with the file and field named in every error.</summary>
    private readonly struct Fields(JsonElement root, string file)
    {
        private JsonElement? Get(string name) =>
            root.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

        public string? OptionalString(string name)
        {
            JsonElement? v = Get(name);
            if (v is null) return null;
            if (v.Value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(v.Value.GetString())) throw new ModelFileException(file, name, "must be a non-empty string");
            return v.Value.GetString();
        }

        public string ExistingFile(string name, string directory, string? fallback)
        {
            string relative = OptionalString(name) ?? fallback ?? throw new ModelFileException(file, name, "missing");
            string path = Path.GetFullPath(Path.Combine(directory, relative));
            if (!path.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal)) throw new ModelFileException(file, name, $"'{relative}' points outside the version folder");
            return System.IO.File.Exists(path) ? path : throw new ModelFileException(file, name, $"'{relative}' does not exist in {directory}");
        }

        public int Int(string name, int min, int max, int? fallback)
        {
            JsonElement? v = Get(name);
            if (v is null) return fallback ?? throw new ModelFileException(file, name, "missing");
            if (v.Value.ValueKind != JsonValueKind.Number || !v.Value.TryGetInt32(out int x)) throw new ModelFileException(file, name, "must be an integer");
            if (x < min || x > max) throw new ModelFileException(file, name, $"is {x}, must be in [{min}, {max}]");
            return x;
        }

        public double Double(string name, double min, double max, double fallback)
        {
            JsonElement? v = Get(name);
            if (v is null) return fallback;
            if (v.Value.ValueKind != JsonValueKind.Number) throw new ModelFileException(file, name, "must be a number");
            double x = v.Value.GetDouble();
            if (!(x >= min && x <= max)) throw new ModelFileException(file, name, $"is {x}, must be in [{min}, {max}]");
            return x;
        }
    }
}
