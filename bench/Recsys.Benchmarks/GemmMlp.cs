using Microsoft.ML.OnnxRuntime;
using Recsys.DenseCompute.Gemm;

namespace Recsys.Benchmarks;

/// <summary>One Linear layer's weights as PyTorch stores them (out x in).</summary>
internal sealed record MlpLayer(int In, int Out, float[] Weight, float[] Bias, Activation Activation);

/// <summary>
/// The DLRM MLPs of BASELINES.md with seeded weights (PyTorch's default Linear init range),
/// run by our PackedLinear chain and by ONNX Runtime from the same weights.
/// </summary>
internal sealed class GemmMlp
{
    public static readonly int[] Bottom = [13, 512, 256, 64];
    public static readonly int[] Top = [479, 1024, 1024, 512, 256, 1];

    private readonly PackedLinear[] _packed;
    private readonly float[][] _activations;

    public GemmMlp(string name, int maxBatch)
    {
        Name = name;
        int[] dims = name == "bottom" ? Bottom : name == "top" ? Top : throw new ArgumentException($"unknown MLP '{name}' (bottom|top)", nameof(name));
        Dims = dims;
        var rng = new Random(name.Length * 7919);
        var layers = new List<MlpLayer>();
        for (int l = 0; l + 1 < dims.Length; l++)
        {
            bool lastLayer = l + 2 == dims.Length;
            // Bottom ends in ReLU (its output feeds the interaction); top ends in the sigmoid score.
            Activation act = !lastLayer ? Activation.Relu : name == "bottom" ? Activation.Relu : Activation.Sigmoid;
            float bound = 1f / MathF.Sqrt(dims[l]);
            layers.Add(new MlpLayer(dims[l], dims[l + 1], Uniform(rng, dims[l] * dims[l + 1], bound), Uniform(rng, dims[l + 1], bound), act));
        }

        Layers = layers;
        _packed = layers.Select(l => PackedLinear.Pack(l.Weight, l.Bias, l.Out, l.In, l.Activation)).ToArray();
        _activations = dims.Skip(1).Select(d => GC.AllocateArray<float>(d * maxBatch, pinned: true)).ToArray();
    }

    public string Name { get; }
    public int[] Dims { get; }
    public IReadOnlyList<MlpLayer> Layers { get; }

    public double Flops(int m)
    {
        double f = 0;
        for (int l = 0; l + 1 < Dims.Length; l++) f += 2.0 * m * Dims[l] * Dims[l + 1];
        return f;
    }

    public static float[] Input(int m, int features) => Uniform(new Random(m), m * features, 1f);

    /// <summary>Runs the chain; returns the last layer's output (m x Out).</summary>
    public ReadOnlySpan<float> Forward(float[] input, int m, int threads)
    {
        ReadOnlySpan<float> x = input;
        for (int l = 0; l < _packed.Length; l++)
        {
            _packed[l].Forward(x, m, _activations[l], threads);
            x = _activations[l];
        }

        return x[..(m * Dims[^1])];
    }

    public InferenceSession OrtSession(int threads)
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        return new InferenceSession(OrtModelWriter.Mlp(Layers), options);
    }

    private static float[] Uniform(Random rng, int count, float bound)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)((rng.NextDouble() * 2) - 1) * bound;
        return values;
    }
}

/// <summary>An ORT session bound to fixed input/output buffers, so Run allocates nothing of ours.</summary>
internal sealed class OrtMlpRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly OrtValue[] _inputs;
    private readonly OrtValue[] _outputs;
    private readonly string[] _inputNames = ["x"];
    private readonly string[] _outputNames = ["y"];

    public OrtMlpRunner(GemmMlp mlp, int threads, float[] input, int m)
        : this(mlp.OrtSession(threads), mlp, input, m)
    {
    }

    private OrtMlpRunner(InferenceSession session, GemmMlp mlp, float[] input, int m)
    {
        _session = session;
        Output = new float[m * mlp.Dims[^1]];
        _inputs = [OrtValue.CreateTensorValueFromMemory(input, [m, mlp.Dims[0]])];
        _outputs = [OrtValue.CreateTensorValueFromMemory(Output, [m, mlp.Dims[^1]])];
    }

    public float[] Output { get; }

    /// <summary>
    /// A runner whose session uses ORT's global intra-op pool of <paramref name="threads"/> threads
    /// (created on first use), for the cold regime's many copies: one pool per session would leave
    /// dozens of idle pools spinning against the session that runs.
    /// </summary>
    public static OrtMlpRunner OnGlobalPool(GemmMlp mlp, int threads, float[] input, int m)
    {
        EnsureGlobalPool(threads);
        using var options = new SessionOptions
        {
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        options.DisablePerSessionThreads();
        return new OrtMlpRunner(new InferenceSession(OrtModelWriter.Mlp(mlp.Layers), options), mlp, input, m);
    }

    private static readonly object s_envLock = new();
    private static int s_envThreads;

    private static void EnsureGlobalPool(int threads)
    {
        lock (s_envLock)
        {
            if (s_envThreads == threads) return;
            if (s_envThreads != 0 || OrtEnv.IsCreated) throw new InvalidOperationException($"ORT's environment already exists (global pool of {s_envThreads} threads); the cold regime needs its own, of {threads}");
            using var threading = new OrtThreadingOptions { GlobalIntraOpNumThreads = threads, GlobalInterOpNumThreads = 1, GlobalSpinControl = true };
            var env = new EnvironmentCreationOptions { threadOptions = threading };
            OrtEnv.CreateInstanceWithOptions(ref env);
            s_envThreads = threads;
        }
    }

    public void Run() => _session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);

    public void Dispose()
    {
        foreach (OrtValue v in _inputs) v.Dispose();
        foreach (OrtValue v in _outputs) v.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
    }
}
