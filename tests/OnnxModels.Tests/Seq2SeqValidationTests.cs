using System.Text.Json.Nodes;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Seq2Seq;

namespace Recsys.OnnxModels.Tests;

/// <summary>Bad options, sources and model files fail with the field (and file) named.</summary>
public sealed class Seq2SeqValidationTests(Seq2SeqFixture fixture) : IClassFixture<Seq2SeqFixture>
{
    [Theory]
    [InlineData(0, null, null, null, "beam")]
    [InlineData(17, null, null, null, "beam")]
    [InlineData(1000000, null, null, null, "beam")]
    [InlineData(4, 0, null, null, "max_length")]
    [InlineData(4, 25, null, null, "max_length")]
    [InlineData(4, null, 5, null, "n_best")]
    [InlineData(4, null, 0, null, "n_best")]
    [InlineData(4, null, null, -1.0, "length_penalty")]
    [InlineData(4, null, null, double.NaN, "length_penalty")]
    public void Bad_options_name_the_option(int beam, int? maxLength, int? nBest, double? lengthPenalty, string field)
    {
        var e = Assert.Throws<InvalidRequestException>(() => fixture.Model.Options(beam, maxLength, nBest, lengthPenalty));
        Assert.Equal(field, e.Field);
        Assert.Equal(400, e.Status);
    }

    [Fact]
    public void Defaults_come_from_model_json()
    {
        DecodeOptions o = fixture.Model.Options();
        Assert.Equal(new DecodeOptions(4, 24, 1, 0.6), o);
    }

    [Fact]
    public void Bad_sources_name_the_field()
    {
        Assert.Equal("ids", Assert.Throws<InvalidRequestException>(() => fixture.Model.CheckSource([])).Field);
        var unknown = Assert.Throws<InvalidRequestException>(() => fixture.Model.CheckSource([5, 300, 6]));
        Assert.Equal(("ids[1]", 422), (unknown.Field, unknown.Status));
        Assert.Equal("ids[0]", Assert.Throws<InvalidRequestException>(() => fixture.Model.CheckSource([-1])).Field);
        var tooLong = Assert.Throws<InvalidRequestException>(() => fixture.Model.CheckSource(Enumerable.Repeat(5, 33).ToArray()));
        Assert.Equal(("ids", 422), (tooLong.Field, tooLong.Status));
        Assert.Equal("text", Assert.Throws<InvalidRequestException>(() => fixture.Model.EncodeText("   ")).Field);
        Assert.Equal("text", Assert.Throws<InvalidRequestException>(() => fixture.Model.EncodeText(string.Join(' ', Enumerable.Repeat("bala", 33)))).Field);
    }

    public static TheoryData<string, string, string> BadModels => new()
    {
        // model.json edit (JSON object merged over the fixture's), field, words in the message
        { "{\"max_length\": 0}", "max_length", "must be in" },
        { "{\"end_id\": null}", "end_id", "missing" },
        { "{\"end_id\": 1}", "end_id", "same as start_id" },
        { "{\"end_id\": 214}", "end_id", "214 entries" },
        { "{\"encoder\": \"missing.onnx\"}", "encoder", "does not exist" },
        { "{\"encoder\": \"../../x.onnx\"}", "encoder", "outside the version folder" },
        { "{\"encoder\": \"decoder.onnx\"}", "inputs", "exactly [src_ids, src_lengths]" },
        { "{\"decoder\": \"encoder.onnx\"}", "inputs", "exactly [prev_token, state, enc_out, src_mask]" },
        { "{\"vocab\": \"short.txt\"}", "vocab", "has 3 tokens" },
        { "{\"beam\": 17}", "beam", "must be in [1, 16]" },
        { "{\"max_batch_rows\": 8}", "max_batch_rows", "smaller than max_beam" },
    };

    [Theory]
    [MemberData(nameof(BadModels))]
    public void Bad_model_files_name_the_file_and_field(string edit, string field, string words)
    {
        string dir = Path.Combine(Path.GetTempPath(), "seq2seq-bad-" + Guid.NewGuid().ToString("N")[..8], "m", "1");
        Directory.CreateDirectory(dir);
        try
        {
            foreach (string f in Directory.GetFiles(Seq2SeqFixture.Directory)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            File.WriteAllText(Path.Combine(dir, "short.txt"), "a\nb\nc\n");
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "model.json")))!.AsObject();
            foreach (var (k, v) in JsonNode.Parse(edit)!.AsObject()) json[k] = v?.DeepClone();
            File.WriteAllText(Path.Combine(dir, "model.json"), json.ToJsonString());

            var e = Assert.Throws<ModelFileException>(() => Seq2SeqModel.Load(ModelSpec.Load(Path.Combine(dir, "model.json"))).Dispose());

            Assert.StartsWith(field, e.Field, StringComparison.Ordinal);
            Assert.True(e.Message.Contains(words, StringComparison.Ordinal), e.Message);
            Assert.Contains(dir, e.File, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(Path.GetDirectoryName(dir))!, recursive: true);
        }
    }
}
