using Microsoft.ML.OnnxRuntime;

namespace Recsys.OnnxModels.Runtime;

/// <summary>
/// Opens ONNX Runtime sessions that never start threads of their own: one intra-op thread (the
/// caller's), sequential execution, no spinning. The front end's compute scheduler owns the cores;
/// a session that brought its own pool would oversubscribe them and ranking latency would pay.
/// </summary>
public static class OrtSessions
{
    public static InferenceSession Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX model file {path} does not exist", path);
        using SessionOptions options = Options();
        return new InferenceSession(path, options);
    }

    /// <summary>
    /// The serving settings, for callers that add to them (the profiler). <paramref name="intraOpThreads"/>
    /// above 1 is for offline tools only, never for a served session.
    /// </summary>
    public static SessionOptions Options(int intraOpThreads = 1)
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = intraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        options.AddSessionConfigEntry("session.inter_op.allow_spinning", "0");
        return options;
    }
}
