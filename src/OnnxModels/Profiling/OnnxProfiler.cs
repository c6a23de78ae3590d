using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recsys.DenseCompute.Characterization;

namespace Recsys.OnnxModels.Profiling;

/// <summary>
/// Characterizes a model served through ONNX Runtime. Operators are the nodes ONNX Runtime actually
/// runs after its graph optimizations (fused Conv+Relu, NCHWc convolutions and their reorders), as
/// served: the sessions use the serving settings of <see cref="Runtime.OrtSessions"/> (one intra-op
/// thread, sequential, no spinning, all optimizations). Their costs come from the shapes ONNX
/// Runtime's profiler records and the optimized graph it saves (<see cref="OnnxNodeAccounting"/>),
/// their times from the same profiler, per pass: a pass is one request batch, which may be several
/// runs (<see cref="OnnxStage.RunsPerPass"/>). The pass total is the sum of ONNX Runtime's own
/// model_run times; "no timers" is a second, unprofiled session timed around the same runs.
/// </summary>
public sealed class OnnxProfiler : IModelProfiler
{
    private const double CleanFactor = 1.5;
    // The profiler stops recording at a million events (three per node run); stay well below.
    private const long EventBudget = 600_000;

    private readonly IReadOnlyList<OnnxStage> _stages;
    private readonly Dictionary<int, BatchProfile> _profiles = [];

    public OnnxProfiler(string name, string kind, IReadOnlyList<OnnxStage> stages)
    {
        ArgumentNullException.ThrowIfNull(stages);
        if (stages.Count == 0) throw new ArgumentException("a workload needs at least one ONNX graph", nameof(stages));
        Name = name;
        Kind = kind;
        _stages = stages;
        Parameters = OnnxParameters.Summarize(stages.Select(s => s.Path).Distinct());
    }

    public string Name { get; }

    public string Kind { get; }

    public ParameterSummary Parameters { get; }

    public IReadOnlyList<OnnxStage> Stages => _stages;

    public string Workload => string.Join("; ", _stages.Select(s => $"{s.Label} {Path.GetFileName(s.Path)}: {s.Note}"))
        + "; operators are the nodes ONNX Runtime runs after its optimizations, timed by its profiler (1 µs resolution)";

    public IReadOnlyList<OperatorCost> Operators(int batch) => Profile(batch).Operators;

    public long MaxLiveActivationBytes(int batch) => Profile(batch).MaxLiveActivationBytes;

    public ForwardTiming Measure(int batch, MeasureSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        if (settings.Clock != ProfileClock.Wall) throw new NotSupportedException("ONNX Runtime's profiler reads wall time only: characterize ONNX models with the wall clock");
        BatchProfile profile = Run(batch, settings);
        _profiles[batch] = profile;
        return profile.Timing!;
    }

    private BatchProfile Profile(int batch)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be > 0");
        if (!_profiles.TryGetValue(batch, out BatchProfile? profile))
        {
            // Accounting only: one profiled pass tells the shapes each node sees.
            profile = Run(batch, null);
            _profiles[batch] = profile;
        }
        return profile;
    }

    private sealed record BatchProfile(IReadOnlyList<OperatorCost> Operators, long MaxLiveActivationBytes, ForwardTiming? Timing);

    /// <param name="settings">Null: one untimed pass for the shapes.</param>
    private BatchProfile Run(int batch, MeasureSettings? settings)
    {
        string scratch = Directory.CreateTempSubdirectory("recsys-ortprofile-").FullName;
        var sessions = new List<StageSession>();
        try
        {
            for (int s = 0; s < _stages.Count; s++) sessions.Add(StageSession.Open(_stages[s], batch, Path.Combine(scratch, $"stage{s}"), settings?.Threads ?? 1, unprofiled: settings is not null));
            long eventsPerPass = Math.Max(1, sessions.Sum(s => 3L * s.Graph.Nodes.Count * s.Runs));
            int warmup = settings?.Warmup ?? 0;
            int max = settings is null ? 1 : (int)Math.Clamp(EventBudget / eventsPerPass - warmup, 3, settings.MaxIterations);
            int min = settings is null ? 1 : Math.Min(settings.MinIterations, max);
            double budget = settings?.BudgetSeconds ?? 0;

            var unprofiled = new List<double>();
            for (int w = 0; w < warmup; w++)
            {
                foreach (StageSession s in sessions) s.Pass(profiled: true);
                foreach (StageSession s in sessions) s.Pass(profiled: false);
            }
            long started = Stopwatch.GetTimestamp();
            int n = 0;
            while (n < max && (n < min || Stopwatch.GetElapsedTime(started).TotalSeconds < budget))
            {
                foreach (StageSession s in sessions) s.Pass(profiled: true);
                if (settings is not null)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    foreach (StageSession s in sessions) s.Pass(profiled: false);
                    unprofiled.Add(Stopwatch.GetElapsedTime(t0).TotalNanoseconds);
                }
                n++;
            }

            var ops = new List<OperatorCost>();
            var opIndex = new Dictionary<string, int>(StringComparer.Ordinal);
            var passOps = new double[n][];
            var passTotals = new double[n];
            long live = 0;
            var stageRuns = new List<(StageSession Session, IReadOnlyList<ProfiledRun> Runs)>();
            foreach (StageSession s in sessions)
            {
                IReadOnlyList<ProfiledRun> runs = s.EndProfiling();
                int expected = (warmup + n) * s.Runs;
                if (runs.Count != expected) throw new InvalidOperationException($"{Path.GetFileName(s.Stage.Path)}: ONNX Runtime's profile holds {runs.Count} runs, {expected} were made (events dropped?)");
                stageRuns.Add((s, runs));
                string prefix = _stages.Count > 1 ? s.Stage.Label + ":" : "";
                ProfiledRun first = runs[warmup * s.Runs];
                StageAccounting accounting = StageAccounting.Of(first, s.Graph, s.InputShapes);
                live = Math.Max(live, accounting.MaxLiveActivationBytes);
                foreach (OperatorCost cost in accounting.Operators)
                {
                    opIndex[prefix + cost.Name] = ops.Count;
                    ops.Add(Scale(cost, prefix + cost.Name, s.Runs));
                }
            }
            for (int i = 0; i < n; i++)
            {
                passOps[i] = new double[ops.Count];
                foreach ((StageSession s, IReadOnlyList<ProfiledRun> runs) in stageRuns)
                {
                    string prefix = _stages.Count > 1 ? s.Stage.Label + ":" : "";
                    for (int r = 0; r < s.Runs; r++)
                    {
                        ProfiledRun run = runs[(warmup + i) * s.Runs + r];
                        passTotals[i] += run.DurationUs * 1000.0;
                        foreach ((string name, long us) in StageAccounting.UniqueNames(run))
                        {
                            // A node that did not run in the accounted pass (another branch) stays unattributed.
                            if (opIndex.TryGetValue(prefix + name, out int k)) passOps[i][k] += us * 1000.0;
                        }
                    }
                }
            }
            ForwardTiming? timing = settings is null ? null : Summarize(batch, ops, passOps, passTotals, unprofiled);
            return new BatchProfile(ops, live, timing);
        }
        finally
        {
            foreach (StageSession s in sessions) s.Dispose();
            try
            {
                Directory.Delete(scratch, recursive: true);
            }
            catch (IOException)
            {
                // A leftover temp directory is not worth failing the characterization.
            }
        }
    }

    private static OperatorCost Scale(OperatorCost cost, string name, int runs) => runs == 1 ? cost with { Name = name } : cost with
    {
        Name = name,
        Shape = $"{cost.Shape} x{runs} runs",
        Flops = cost.Flops * runs,
        WeightBytes = cost.WeightBytes * runs,
        ActivationBytesIn = cost.ActivationBytesIn * runs,
        ActivationBytesOut = cost.ActivationBytesOut * runs,
    };

    private static ForwardTiming Summarize(int batch, IReadOnlyList<OperatorCost> ops, double[][] passOps, double[] totals, List<double> unprofiled)
    {
        int n = totals.Length;
        double[] sorted = [.. totals.Order()];
        double cut = Math.Min(Percentile.Of(sorted, 95), CleanFactor * Percentile.Of(sorted, 10));
        int[] kept = [.. Enumerable.Range(0, n).Where(i => totals[i] <= cut)];
        var timings = new OperatorTiming[ops.Count];
        var column = new double[n];
        for (int k = 0; k < ops.Count; k++)
        {
            for (int i = 0; i < n; i++) column[i] = passOps[i][k];
            double mean = kept.Average(i => column[i]);
            Array.Sort(column);
            timings[k] = new OperatorTiming(ops[k].Name, Percentile.Of(column, 50), mean);
        }
        double[] sortedUnprofiled = [.. unprofiled.Order()];
        return new ForwardTiming(batch, n, Percentile.Of(sorted, 50), Percentile.Of(sorted, 99), kept.Average(i => totals[i]), kept.Length, timings,
            sortedUnprofiled.Length > 0 ? Percentile.Of(sortedUnprofiled, 50) : null, ProfileClock.Wall);
    }

    /// <summary>A stage's profiled and unprofiled sessions at one batch size, with their inputs.</summary>
    private sealed class StageSession : IDisposable
    {
        private readonly InferenceSession _profiled;
        private readonly InferenceSession? _plain;
        private readonly StageInputs _inputs;
        private readonly StageInputs? _plainInputs;
        private readonly string[] _outputs;
        private readonly RunOptions _runOptions = new();
        private bool _ended;

        private StageSession(OnnxStage stage, InferenceSession profiled, InferenceSession? plain, StageInputs inputs, StageInputs? plainInputs, OnnxGraphFile graph, int runs)
        {
            Stage = stage;
            _profiled = profiled;
            _plain = plain;
            _inputs = inputs;
            _plainInputs = plainInputs;
            Graph = graph;
            Runs = runs;
            _outputs = [.. profiled.OutputMetadata.Keys];
            InputShapes = new Dictionary<string, ProfiledTensor>(StringComparer.Ordinal);
            for (int i = 0; i < inputs.Names.Count; i++)
            {
                OrtTensorTypeAndShapeInfo info = inputs.Values[i].GetTensorTypeAndShape();
                InputShapes[inputs.Names[i]] = new ProfiledTensor(TypeName(info.ElementDataType), info.Shape);
            }
        }

        public OnnxStage Stage { get; }

        /// <summary>The graph as ONNX Runtime optimized it (node names match the profile's).</summary>
        public OnnxGraphFile Graph { get; }

        public int Runs { get; }

        public Dictionary<string, ProfiledTensor> InputShapes { get; }

        public static StageSession Open(OnnxStage stage, int batch, string scratch, int threads, bool unprofiled)
        {
            Directory.CreateDirectory(scratch);
            string optimized = Path.Combine(scratch, "optimized.onnx");
            InferenceSession? profiled = null, plain = null;
            StageInputs? inputs = null, plainInputs = null;
            try
            {
                using (SessionOptions options = ServingOptions(threads))
                {
                    options.OptimizedModelFilePath = optimized;
                    options.ProfileOutputPathPrefix = Path.Combine(scratch, "profile");
                    options.EnableProfiling = true;
                    profiled = new InferenceSession(stage.Path, options);
                }
                if (unprofiled)
                {
                    using SessionOptions options = ServingOptions(threads);
                    plain = new InferenceSession(stage.Path, options);
                }
                inputs = stage.Inputs(profiled, batch);
                plainInputs = plain is null ? null : stage.Inputs(plain, batch);
                return new StageSession(stage, profiled, plain, inputs, plainInputs, OnnxGraphFile.Read(optimized), stage.RunsPerPass(batch));
            }
            catch
            {
                inputs?.Dispose();
                plainInputs?.Dispose();
                profiled?.Dispose();
                plain?.Dispose();
                throw;
            }
        }

        /// <summary>The serving session settings (<see cref="Runtime.OrtSessions.Options"/>), with quiet logs: saving an NCHWc-optimized graph warns every time.</summary>
        private static SessionOptions ServingOptions(int threads)
        {
            SessionOptions options = Runtime.OrtSessions.Options(threads);
            options.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR;
            return options;
        }

        public void Pass(bool profiled)
        {
            InferenceSession session = profiled ? _profiled : _plain ?? throw new InvalidOperationException("no unprofiled session");
            StageInputs inputs = profiled ? _inputs : _plainInputs!;
            for (int r = 0; r < Runs; r++)
            {
                using IDisposableReadOnlyCollection<OrtValue> results = session.Run(_runOptions, inputs.Names, inputs.Values, _outputs);
            }
        }

        public IReadOnlyList<ProfiledRun> EndProfiling()
        {
            _ended = true;
            return OrtProfileTrace.Read(_profiled.EndProfiling());
        }

        private static string TypeName(TensorElementType type) => type switch
        {
            TensorElementType.Float => "float",
            TensorElementType.Int64 => "int64",
            TensorElementType.Int32 => "int32",
            TensorElementType.Bool => "bool",
            TensorElementType.Double => "double",
            _ => "float",
        };

        public void Dispose()
        {
            if (!_ended)
            {
                try
                {
                    _profiled.EndProfiling();
                }
                catch (OnnxRuntimeException)
                {
                    // Ending a profile only to stop it; its file is deleted with the scratch directory.
                }
            }
            _inputs.Dispose();
            _plainInputs?.Dispose();
            _runOptions.Dispose();
            _profiled.Dispose();
            _plain?.Dispose();
        }
    }
}
