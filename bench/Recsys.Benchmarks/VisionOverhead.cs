using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Runtime;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Scheduling;

namespace Recsys.Benchmarks;

/// <summary>
/// What the scheduler path costs over a bare ONNX Runtime session at batch 1, console mode.
/// Peer: InferenceSession.Run on the calling thread (same OrtSessions options: one intra-op
/// thread, no spinning), input as an OrtValue over a managed array, output copied out.
/// Ours: the served path minus HTTP: VisionModel's graph run inside a best-effort BatchQueue unit
/// of the ComputeScheduler, awaited by the caller, one request at a time. With default options an
/// idle scheduler runs a lone item on the caller's thread (SchedulerOptions.InlineWhenIdle).
/// Hop: the same with InlineWhenIdle off, so every call pays the hand-off to a (niced) worker and back.
/// Direct: the same VisionModel.RunBatch on the calling thread, no scheduler: splits our cost into
/// the wrapper (tensor copies, dictionaries) and the hand-off to a scheduler worker.
/// Wall and process CPU time (CLOCK_PROCESS_CPUTIME_ID, all threads) are both reported per call.
///   dotnet run -c Release --project bench/Recsys.Benchmarks -- vision-overhead
///     [--models resnext,video3d,detector] [--calls 300] [--rounds 5] [--fixtures tests/fixtures/vision] [--alloc-only 1]
/// Each model also prints ALLOC: managed bytes allocated per item by VisionModel.RunBatch on a full
/// batch (model.json max_batch copies of the input), on the calling thread: a load-independent figure.
/// </summary>
public static class VisionOverhead
{
    public static void Run(string[] args)
    {
        string[] models = ["resnext", "video3d", "detector"];
        int calls = 300, rounds = 5;
        bool allocOnly = false;
        string fixtures = Path.Combine("tests", "fixtures", "vision");
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--models": models = args[i + 1].Split(','); break;
                case "--calls": calls = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--fixtures": fixtures = args[i + 1]; break;
                case "--alloc-only": allocOnly = args[i + 1] == "1"; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        Console.WriteLine($"INFO calls={calls} rounds={rounds} cores={Environment.ProcessorCount} scheduler workers={Environment.ProcessorCount} load={File.ReadAllText("/proc/loadavg").Trim()}");
        using var scheduler = new ComputeScheduler();
        using var hopping = new ComputeScheduler(0, new SchedulerOptions { InlineWhenIdle = false });
        foreach (string name in models)
        {
            Allocations(fixtures, name);
            if (!allocOnly) Measure(scheduler, hopping, fixtures, name, calls, rounds);
        }
    }

    private static void Allocations(string fixtures, string name)
    {
        using VisionModel model = VisionModel.Load(ModelSpec.Load(Path.Combine(fixtures, name, "1", "model.json")));
        HostTensor input = FirstInput(Path.Combine(fixtures, name, "reference.json"));
        var request = new GraphRequest(new Dictionary<string, HostTensor> { [model.PrimaryInput.Name] = input });
        GraphRequest[] batch = [.. Enumerable.Repeat(request, model.Spec.MaxBatch)];
        for (int i = 0; i < 3; i++) model.RunBatch(batch);
        const int Batches = 20;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Batches; i++) model.RunBatch(batch);
        double perItem = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)(Batches * batch.Length);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ALLOC model={name} batch={batch.Length} input_bytes_per_item={input.Length * sizeof(float)} allocated_bytes_per_item={perItem:F0}"));
    }

    private static void Measure(ComputeScheduler scheduler, ComputeScheduler hopping, string fixtures, string name, int calls, int rounds)
    {
        string modelJson = Path.Combine(fixtures, name, "1", "model.json");
        using VisionModel model = VisionModel.Load(ModelSpec.Load(modelJson));
        using InferenceSession bare = OrtSessions.Open(model.Spec.OnnxPath!);
        HostTensor input = FirstInput(Path.Combine(fixtures, name, "reference.json"));
        string inputName = model.PrimaryInput.Name;
        string[] outputs = [.. model.Outputs.Select(o => o.Name)];
        BatchQueue<GraphRequest, GraphOutcome> queue = scheduler.CreateQueue<GraphRequest, GraphOutcome>(name, WorkClass.BestEffort, new BatchLimits(1, TimeSpan.Zero), model.RunBatch);
        BatchQueue<GraphRequest, GraphOutcome> hopQueue = hopping.CreateQueue<GraphRequest, GraphOutcome>(name, WorkClass.BestEffort, new BatchLimits(1, TimeSpan.Zero), model.RunBatch);
        var request = new GraphRequest(new Dictionary<string, HostTensor> { [inputName] = input });
        using var runOptions = new RunOptions();
        float[] data = input.Floats;

        void Bare()
        {
            using OrtValue value = OrtValue.CreateTensorValueFromMemory(data, input.Shape);
            using IDisposableReadOnlyCollection<OrtValue> results = bare.Run(runOptions, [inputName], [value], outputs);
            foreach (OrtValue r in results)
            {
                if (r.GetTensorTypeAndShape().ElementDataType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float) _ = r.GetTensorDataAsSpan<float>().ToArray();
                else _ = r.GetTensorDataAsSpan<long>().ToArray();
            }
        }

        void Ours() => queue.SubmitAsync(request, ComputeScheduler.DeadlineAfter(TimeSpan.FromSeconds(10))).GetAwaiter().GetResult().Get();
        void Hop() => hopQueue.SubmitAsync(request, ComputeScheduler.DeadlineAfter(TimeSpan.FromSeconds(10))).GetAwaiter().GetResult().Get();

        for (int w = 0; w < 20; w++)
        {
            Bare();
            Ours();
            Hop();
        }
        void Direct() => model.RunBatch([request])[0].Get();

        // Calls alternate peer / direct / scheduled / hop one by one (order rotating), so all four
        // see the same moment of a shared, noisy machine; each round reports the median of each.
        var rows = new List<(double Bare, double Direct, double Scheduled, double Hop)>();
        var cpuRows = new List<(double Bare, double Direct, double Scheduled)>();
        for (int r = 0; r < rounds; r++)
        {
            var times = new double[4][];
            var cpu = new double[4][];
            for (int v = 0; v < 4; v++)
            {
                times[v] = new double[calls];
                cpu[v] = new double[calls];
            }
            Action[] variants = [Bare, Direct, Ours, Hop];
            for (int i = 0; i < calls; i++)
            {
                for (int k = 0; k < 4; k++)
                {
                    int v = (i + k) % 4;
                    double cpuStart = ProcessCpuMicros();
                    long start = Stopwatch.GetTimestamp();
                    variants[v]();
                    times[v][i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                    cpu[v][i] = ProcessCpuMicros() - cpuStart;
                }
            }
            (double b, double d, double o, double h) = (Median(times[0]), Median(times[1]), Median(times[2]), Median(times[3]));
            rows.Add((b, d, o, h));
            (double cb, double cd, double co) = (Median(cpu[0]), Median(cpu[1]), Median(cpu[2]));
            cpuRows.Add((cb, cd, co));
            Console.WriteLine($"ROUND model={name} round={r} bare_us={b:F1} direct_us={d:F1} scheduled_us={o:F1} ratio={o / b:F3} hop_us={h:F1} hop_ratio={h / b:F3} cpu_bare_us={cb:F1} cpu_direct_us={cd:F1} cpu_scheduled_us={co:F1} cpu_ratio={co / cb:F3}");
        }
        double bm = Median(rows.Select(x => x.Bare)), dm = Median(rows.Select(x => x.Direct)), om = Median(rows.Select(x => x.Scheduled)), hm = Median(rows.Select(x => x.Hop));
        double[] ratios = [.. rows.Select(x => x.Scheduled / x.Bare)];
        double[] hopRatios = [.. rows.Select(x => x.Hop / x.Bare)];
        Console.WriteLine($"RESULT model={name} input={TensorSignature.Describe(input.Shape)} bare_median_us={bm:F1} direct_median_us={dm:F1} scheduled_median_us={om:F1} " +
            $"overhead={(om / bm - 1) * 100:F1}% median_round_ratio={Median(ratios):F3} ratio_range=[{ratios.Min():F3}, {ratios.Max():F3}] " +
            $"hop_median_us={hm:F1} hop_median_round_ratio={Median(hopRatios):F3} hop_ratio_range=[{hopRatios.Min():F3}, {hopRatios.Max():F3}]");
        double[] cpuRatios = [.. cpuRows.Select(x => x.Scheduled / x.Bare)];
        Console.WriteLine($"RESULT-CPU model={name} cpu_bare_median_us={Median(cpuRows.Select(x => x.Bare)):F1} cpu_direct_median_us={Median(cpuRows.Select(x => x.Direct)):F1} " +
            $"cpu_scheduled_median_us={Median(cpuRows.Select(x => x.Scheduled)):F1} cpu_overhead={(Median(cpuRatios) - 1) * 100:F1}% cpu_ratio_range=[{cpuRatios.Min():F3}, {cpuRatios.Max():F3}]");
    }

    /// <summary>
    /// CPU time of the whole process (every thread), from CLOCK_PROCESS_CPUTIME_ID: on a shared
    /// machine wall time mostly measures how long the OS keeps a woken thread waiting for a core;
    /// CPU time is what the path itself burns.
    /// </summary>
    private static unsafe double ProcessCpuMicros()
    {
        Timespec t;
        return clock_gettime(2, &t) == 0 ? t.Seconds * 1e6 + t.Nanoseconds / 1e3 : double.NaN;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern unsafe int clock_gettime(int clock, Timespec* time);

    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = [.. values.Order()];
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>The first case's first input, batch 1 (the fixtures' "batch1" / "image0" cases).</summary>
    private static HostTensor FirstInput(string referenceJson)
    {
        JsonNode tensor = JsonNode.Parse(File.ReadAllText(referenceJson))!["cases"]![0]!["inputs"]!.AsObject().First().Value!;
        long[] shape = [.. tensor["shape"]!.AsArray().Select(d => d!.GetValue<long>())];
        byte[] raw = Convert.FromBase64String(tensor["b64"]!.GetValue<string>());
        return HostTensor.Of(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw).ToArray(), shape);
    }
}
