using System.Buffers.Binary;
using System.Text;

namespace Recsys.Benchmarks;

/// <summary>
/// Writes an MLP as a minimal ONNX model (opset 17): Gemm(transB=1) per layer, as
/// torch.onnx.export emits for nn.Linear, then Relu or Sigmoid. The bench generates the
/// peer's model from the very weights our kernel packs, so no .onnx file is checked in
/// and both sides compute the same function.
/// </summary>
internal static class OrtModelWriter
{
    public static byte[] Mlp(IReadOnlyList<MlpLayer> layers)
    {
        var graph = new Proto();
        string current = "x";
        for (int l = 0; l < layers.Count; l++)
        {
            MlpLayer layer = layers[l];
            string w = $"w{l}", b = $"b{l}", gemmOut = $"g{l}";
            graph.Message(5, t => Tensor(t, w, [layer.Out, layer.In], layer.Weight));
            graph.Message(5, t => Tensor(t, b, [layer.Out], layer.Bias));
            string input = current;
            graph.Message(1, n =>
            {
                n.String(1, input).String(1, w).String(1, b).String(2, gemmOut).String(3, $"gemm{l}").String(4, "Gemm");
                n.Message(5, a => a.String(1, "transB").Varint(20, 2).Varint(3, 1));
            });
            current = gemmOut;
            string? op = layer.Activation switch
            {
                Recsys.DenseCompute.Gemm.Activation.Relu => "Relu",
                Recsys.DenseCompute.Gemm.Activation.Sigmoid => "Sigmoid",
                _ => null,
            };
            if (op is not null)
            {
                string actIn = current, actOut = $"a{l}";
                graph.Message(1, n => n.String(1, actIn).String(2, actOut).String(3, $"{op.ToLowerInvariant()}{l}").String(4, op));
                current = actOut;
            }
        }

        // Rename the last value to "y" through an Identity so input and output names are fixed.
        string last = current;
        graph.Message(1, n => n.String(1, last).String(2, "y").String(3, "out").String(4, "Identity"));
        graph.String(2, "mlp");
        graph.Message(11, v => ValueInfo(v, "x", layers[0].In));
        graph.Message(12, v => ValueInfo(v, "y", layers[^1].Out));

        var model = new Proto();
        model.Varint(1, 8).String(2, "recsys-bench").Message(7, graph).Message(8, o => o.String(1, "").Varint(2, 17));
        return model.ToArray();
    }

    private static void Tensor(Proto t, string name, long[] dims, float[] values)
    {
        foreach (long d in dims) t.Varint(1, d);
        t.Varint(2, 1); // FLOAT
        t.String(8, name);
        var raw = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * 4), values[i]);
        t.Bytes(9, raw);
    }

    private static void ValueInfo(Proto v, string name, int features)
    {
        v.String(1, name);
        v.Message(2, type => type.Message(1, tensor =>
        {
            tensor.Varint(1, 1); // FLOAT
            tensor.Message(2, shape =>
            {
                shape.Message(1, d => d.String(2, "batch"));
                shape.Message(1, d => d.Varint(1, features));
            });
        }));
    }

    /// <summary>Just enough protobuf encoding for the fields above.</summary>
    private sealed class Proto
    {
        private readonly MemoryStream _buffer = new();

        public byte[] ToArray() => _buffer.ToArray();

        public Proto Varint(int field, long value)
        {
            Tag(field, 0);
            Raw((ulong)value);
            return this;
        }

        public Proto String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public Proto Bytes(int field, byte[] value)
        {
            Tag(field, 2);
            Raw((ulong)value.Length);
            _buffer.Write(value);
            return this;
        }

        public Proto Message(int field, Action<Proto> build)
        {
            var inner = new Proto();
            build(inner);
            return Message(field, inner);
        }

        public Proto Message(int field, Proto inner) => Bytes(field, inner.ToArray());

        private void Tag(int field, int wireType) => Raw((ulong)((field << 3) | wireType));

        private void Raw(ulong value)
        {
            while (value >= 0x80)
            {
                _buffer.WriteByte((byte)(value | 0x80));
                value >>= 7;
            }

            _buffer.WriteByte((byte)value);
        }
    }
}
