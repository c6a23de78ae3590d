using System.Text;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

public class SafeTensorsTests
{
    [Fact]
    public void Writer_output_reads_back_with_names_shapes_and_values()
    {
        string path = Path.Combine(Temp.Directory(), "w.safetensors");
        float[] a = [.. Enumerable.Range(0, 6).Select(i => i * 0.5f - 1)];
        float[] b = [3.25f, -7f];
        using (var writer = new SafeTensorsWriter(path, [("a", [2, 3]), ("empty", [0, 4]), ("b", [2])]))
        {
            writer.Write(a.AsSpan(0, 4));
            writer.Write([.. a[4..], .. b]);
        }
        using SafeTensorsFile file = SafeTensorsFile.Open(path);
        Assert.Equal(new long[] { 2, 3 }, file.Get("a").Shape);
        Assert.Equal(new long[] { 0, 4 }, file.Get("empty").Shape);
        Assert.Equal(a, file.ReadFloats("a", 2, 3));
        Assert.Equal(b, file.ReadFloats("b", 2));
        // Data starts 8-byte aligned, as the reference writer pads the header.
        Assert.Equal(0, file.Get("a").Offset % 8);
    }

    [Fact]
    public void Half_bfloat_and_byte_tensors_convert_to_float()
    {
        var data = new List<byte>();
        data.AddRange(BitConverter.GetBytes((Half)1.5f));
        data.AddRange(BitConverter.GetBytes((Half)(-2f)));
        data.AddRange(BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(3.5f) >> 16)));
        data.Add(unchecked((byte)(sbyte)-5));
        data.Add(200);
        string path = Raw("""{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"bf":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},"i":{"dtype":"I8","shape":[1],"data_offsets":[6,7]},"u":{"dtype":"U8","shape":[1],"data_offsets":[7,8]}}""", [.. data]);
        using SafeTensorsFile file = SafeTensorsFile.Open(path);
        Assert.Equal([1.5f, -2f], file.ReadFloats("h", 2));
        Assert.Equal([3.5f], file.ReadFloats("bf", 1));
        Assert.Equal([-5f], file.ReadFloats("i", 1));
        Assert.Equal([200f], file.ReadFloats("u", 1));
    }

    [Fact]
    public void Truncated_file_names_the_tensor_that_runs_past_the_end()
    {
        string path = Path.Combine(Temp.Directory(), "w.safetensors");
        using (var writer = new SafeTensorsWriter(path, [("a", [4]), ("b", [4])])) writer.Write(new float[8]);
        using (var s = new FileStream(path, FileMode.Open)) s.SetLength(s.Length - 3);
        var e = Assert.Throws<ModelFileException>(() => SafeTensorsFile.Open(path));
        Assert.Equal(path, e.File);
        Assert.Equal("tensor 'b'.data_offsets", e.Field);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_length_larger_than_the_file_is_refused()
    {
        string path = Path.Combine(Temp.Directory(), "w.safetensors");
        byte[] bytes = [.. BitConverter.GetBytes(1000L), .. "{}"u8];
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ModelFileException>(() => SafeTensorsFile.Open(path));
        Assert.Equal("header", e.Field);
        Assert.Contains("1000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_length_cutting_the_json_short_is_refused()
    {
        string json = """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";
        string path = Path.Combine(Temp.Directory(), "w.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)json.Length - 5), .. Encoding.UTF8.GetBytes(json), 0, 0, 0, 0]);
        var e = Assert.Throws<ModelFileException>(() => SafeTensorsFile.Open(path));
        Assert.Equal("header", e.Field);
    }

    [Fact]
    public void File_shorter_than_the_length_prefix_is_refused()
    {
        string path = Path.Combine(Temp.Directory(), "w.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Equal("header", Assert.Throws<ModelFileException>(() => SafeTensorsFile.Open(path)).Field);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,400]}}""", "tensor 'a'.data_offsets")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,4]}}""", "tensor 'a'.data_offsets")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":["x",4]}}""", "tensor 'a'.data_offsets")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""", "tensor 'a'.data_offsets")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "tensor 'a'")]
    [InlineData("""{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}""", "tensor 'a'.dtype")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}""", "tensor 'a'.shape")]
    [InlineData("""{"a":{"dtype":"F32","data_offsets":[0,8]}}""", "tensor 'a'.shape")]
    [InlineData("""{"a":5}""", "tensor 'a'")]
    [InlineData("""[1]""", "header")]
    public void Bad_header_entries_name_the_tensor_and_field(string header, string field)
    {
        string path = Raw(header, new byte[8]);
        var e = Assert.Throws<ModelFileException>(() => SafeTensorsFile.Open(path));
        Assert.Equal(path, e.File);
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void Shape_not_matching_the_model_is_reported_by_tensor_name()
    {
        string path = Path.Combine(Temp.Directory(), "w.safetensors");
        using (var writer = new SafeTensorsWriter(path, [("bot_l.0.weight", [4, 3])])) writer.Write(new float[12]);
        using SafeTensorsFile file = SafeTensorsFile.Open(path);
        var e = Assert.Throws<ModelFileException>(() => file.ReadFloats("bot_l.0.weight", 4, 5));
        Assert.Equal("tensor 'bot_l.0.weight'", e.Field);
        Assert.Contains("[4, 3]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[4, 5]", e.Message, StringComparison.Ordinal);
        Assert.Equal("tensor 'top_l.0.weight'", Assert.Throws<ModelFileException>(() => file.Get("top_l.0.weight")).Field);
    }

    [Fact]
    public void Metadata_is_exposed_and_not_taken_for_a_tensor()
    {
        string path = Raw("""{"__metadata__":{"format":"pt"},"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}""", new byte[8]);
        using SafeTensorsFile file = SafeTensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(["a"], file.Tensors.Keys);
    }

    private static string Raw(string header, byte[] data)
    {
        string path = Path.Combine(Temp.Directory(), "raw.safetensors");
        byte[] json = Encoding.UTF8.GetBytes(header);
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)json.Length), .. json, .. data]);
        return path;
    }
}
