using System.Text;
using Recsys.DenseCompute.Models;

namespace Recsys.OnnxModels.Profiling;

/// <summary>An initializer's name, element type (ONNX TensorProto.DataType) and dimensions; its data is not kept.</summary>
public sealed record OnnxInitializer(string Name, int DataType, long[] Dims)
{
    public long Elements => Dims.Aggregate(1L, (a, d) => a * d);

    public long Bytes => Elements * OnnxElementTypes.Size(DataType);
}

/// <summary>A node's identity, wiring and integer attributes (all the accounting needs).</summary>
public sealed record OnnxNode(string Name, string OpType, string Domain, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyDictionary<string, long> IntAttributes);

/// <summary>
/// The parts of an .onnx file the characterization reads: nodes (of the main graph and of every
/// subgraph, e.g. If branches) and initializer shapes. ONNX Runtime's .NET API does not expose
/// initializers, so this walks the ModelProto protobuf by hand: only the fields named below are
/// decoded, everything else is skipped by wire type, and raw tensor data is never copied.
/// </summary>
public sealed class OnnxGraphFile
{
    // ModelProto.graph; GraphProto.node/initializer; NodeProto.input/output/name/op_type/attribute/domain;
    // AttributeProto.name/i/g/graphs; TensorProto.dims/data_type/name.
    private const int ModelGraph = 7;
    private const int GraphNode = 1, GraphInitializer = 5;
    private const int NodeInput = 1, NodeOutput = 2, NodeName = 3, NodeOpType = 4, NodeAttribute = 5, NodeDomain = 7;
    private const int AttrName = 1, AttrInt = 3, AttrGraph = 6, AttrGraphs = 11;
    private const int TensorDims = 1, TensorDataType = 2, TensorName = 8;

    private readonly Dictionary<string, OnnxNode> _byName = new(StringComparer.Ordinal);

    private OnnxGraphFile(string path, List<OnnxNode> nodes, Dictionary<string, OnnxInitializer> initializers)
    {
        Path = path;
        Nodes = nodes;
        Initializers = initializers;
        foreach (OnnxNode n in nodes)
        {
            if (n.Name.Length > 0) _byName.TryAdd(n.Name, n);
        }
    }

    public string Path { get; }

    /// <summary>Every node of the main graph, then of the subgraphs, in file order.</summary>
    public IReadOnlyList<OnnxNode> Nodes { get; }

    /// <summary>Initializers of the main graph and every subgraph, by name.</summary>
    public IReadOnlyDictionary<string, OnnxInitializer> Initializers { get; }

    public OnnxNode? Node(string name) => _byName.GetValueOrDefault(name);

    public bool IsInitializer(string tensor) => Initializers.ContainsKey(tensor);

    /// <exception cref="ModelFileException">The file is not a readable ONNX ModelProto.</exception>
    public static OnnxGraphFile Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new ModelFileException(path, "onnx", $"cannot be read: {e.Message}");
        }
        var nodes = new List<OnnxNode>();
        var initializers = new Dictionary<string, OnnxInitializer>(StringComparer.Ordinal);
        try
        {
            var model = new ProtoReader(bytes, 0, bytes.Length);
            bool sawGraph = false;
            while (model.Next(out int field, out int wire))
            {
                if (field == ModelGraph && wire == ProtoReader.LengthDelimited)
                {
                    ReadGraph(model.Sub(), nodes, initializers);
                    sawGraph = true;
                }
                else model.Skip(wire);
            }
            if (!sawGraph) throw new ModelFileException(path, "graph", "the file has no ModelProto.graph");
        }
        catch (FormatException e)
        {
            throw new ModelFileException(path, "onnx", $"is not a valid ONNX protobuf: {e.Message}");
        }
        return new OnnxGraphFile(path, nodes, initializers);
    }

    private static void ReadGraph(ProtoReader graph, List<OnnxNode> nodes, Dictionary<string, OnnxInitializer> initializers)
    {
        var subgraphs = new List<ProtoReader>();
        while (graph.Next(out int field, out int wire))
        {
            if (field == GraphNode && wire == ProtoReader.LengthDelimited) nodes.Add(ReadNode(graph.Sub(), subgraphs));
            else if (field == GraphInitializer && wire == ProtoReader.LengthDelimited)
            {
                OnnxInitializer t = ReadTensor(graph.Sub());
                initializers.TryAdd(t.Name, t);
            }
            else graph.Skip(wire);
        }
        // Subgraphs after the main graph's nodes, so Nodes starts with what runs at the top level.
        foreach (ProtoReader sub in subgraphs) ReadGraph(sub, nodes, initializers);
    }

    private static OnnxNode ReadNode(ProtoReader node, List<ProtoReader> subgraphs)
    {
        string name = "", op = "", domain = "";
        var inputs = new List<string>();
        var outputs = new List<string>();
        var ints = new Dictionary<string, long>(StringComparer.Ordinal);
        while (node.Next(out int field, out int wire))
        {
            switch (field)
            {
                case NodeInput when wire == ProtoReader.LengthDelimited: inputs.Add(node.String()); break;
                case NodeOutput when wire == ProtoReader.LengthDelimited: outputs.Add(node.String()); break;
                case NodeName when wire == ProtoReader.LengthDelimited: name = node.String(); break;
                case NodeOpType when wire == ProtoReader.LengthDelimited: op = node.String(); break;
                case NodeDomain when wire == ProtoReader.LengthDelimited: domain = node.String(); break;
                case NodeAttribute when wire == ProtoReader.LengthDelimited: ReadAttribute(node.Sub(), ints, subgraphs); break;
                default: node.Skip(wire); break;
            }
        }
        return new OnnxNode(name, op, domain, inputs, outputs, ints);
    }

    private static void ReadAttribute(ProtoReader attr, Dictionary<string, long> ints, List<ProtoReader> subgraphs)
    {
        string name = "";
        long? value = null;
        while (attr.Next(out int field, out int wire))
        {
            if (field == AttrName && wire == ProtoReader.LengthDelimited) name = attr.String();
            else if (field == AttrInt && wire == ProtoReader.WireVarint) value = (long)attr.Varint();
            else if (field is AttrGraph or AttrGraphs && wire == ProtoReader.LengthDelimited) subgraphs.Add(attr.Sub());
            else attr.Skip(wire);
        }
        if (value is { } v && name.Length > 0) ints[name] = v;
    }

    private static OnnxInitializer ReadTensor(ProtoReader tensor)
    {
        string name = "";
        int dataType = 0;
        var dims = new List<long>();
        while (tensor.Next(out int field, out int wire))
        {
            if (field == TensorDims && wire == ProtoReader.WireVarint) dims.Add((long)tensor.Varint());
            else if (field == TensorDims && wire == ProtoReader.LengthDelimited)
            {
                ProtoReader packed = tensor.Sub();
                while (!packed.AtEnd) dims.Add((long)packed.Varint());
            }
            else if (field == TensorDataType && wire == ProtoReader.WireVarint) dataType = (int)tensor.Varint();
            else if (field == TensorName && wire == ProtoReader.LengthDelimited) name = tensor.String();
            else tensor.Skip(wire);
        }
        return new OnnxInitializer(name, dataType, [.. dims]);
    }

    /// <summary>A cursor over one protobuf message in a byte array.</summary>
    private struct ProtoReader(byte[] data, int start, int end)
    {
        public const int WireVarint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

        private int _pos = start;

        public readonly bool AtEnd => _pos >= end;

        public bool Next(out int field, out int wire)
        {
            if (_pos >= end)
            {
                field = wire = 0;
                return false;
            }
            ulong key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            if (field == 0) throw new FormatException($"field number 0 at byte {_pos}");
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= end) throw new FormatException($"varint runs past the end of its message at byte {_pos}");
                byte b = data[_pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw new FormatException($"varint longer than 10 bytes at byte {_pos}");
        }

        public ProtoReader Sub()
        {
            int length = Length();
            var sub = new ProtoReader(data, _pos, _pos + length);
            _pos += length;
            return sub;
        }

        public string String()
        {
            int length = Length();
            string s = Encoding.UTF8.GetString(data, _pos, length);
            _pos += length;
            return s;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case WireVarint: Varint(); break;
                case Fixed64: Advance(8); break;
                case LengthDelimited: Advance(Length()); break;
                case Fixed32: Advance(4); break;
                default: throw new FormatException($"unsupported wire type {wire} at byte {_pos}");
            }
        }

        private int Length()
        {
            ulong length = Varint();
            if (length > (ulong)(end - _pos)) throw new FormatException($"a {length}-byte field runs past the end of its message at byte {_pos}");
            return (int)length;
        }

        private void Advance(int n)
        {
            if (n > end - _pos) throw new FormatException($"a field runs past the end of its message at byte {_pos}");
            _pos += n;
        }
    }
}

/// <summary>Element sizes of ONNX tensor types, by TensorProto.DataType and by the names ONNX Runtime's profiler writes.</summary>
public static class OnnxElementTypes
{
    public static int Size(int dataType) => dataType switch
    {
        1 => 4, // float
        2 or 3 or 9 => 1, // uint8, int8, bool
        4 or 5 or 10 or 16 => 2, // uint16, int16, float16, bfloat16
        6 or 12 => 4, // int32, uint32
        7 or 11 or 13 => 8, // int64, double, uint64
        _ => 0, // strings and complex types carry no accountable numeric bytes
    };

    public static string Name(int dataType) => dataType switch
    {
        1 => "fp32",
        10 => "fp16",
        16 => "bf16",
        3 => "int8",
        2 => "uint8",
        11 => "fp64",
        _ => $"type{dataType}",
    };

    public static int SizeOf(string profilerType) => profilerType switch
    {
        "float" or "int32" or "uint32" => 4,
        "double" or "int64" or "uint64" => 8,
        "float16" or "bfloat16" or "MLFloat16" or "BFloat16" or "int16" or "uint16" => 2,
        "bool" or "int8" or "uint8" => 1,
        _ => 4,
    };
}
