using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Recsys.DenseCompute.Dlrm;
using Recsys.EmbeddingGrains.Contracts;
using Recsys.Router.Batching;
using Recsys.Router.Hosting;
using Recsys.Router.Repository;
using Recsys.Router.Serving;

namespace Recsys.Benchmarks;

/// <summary>
/// `serving-profile {root} {model} [rounds]`: where one engine pass over a batch of 128 spends its
/// time, stage by stage, each timed alone (medians over many passes). The stages: splitting ids per
/// shard, an empty grain call (pure Orleans round trip), all shard calls of a batch, the whole
/// engine pass, and the whole model in one process as the floor.
/// </summary>
public static class ServingProfile
{
    public static void Run(string[] args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task RunAsync(string[] args)
    {
        string root = args.Length > 0 ? args[0] : throw new ArgumentException("usage: serving-profile {root with models/ and requests-*.json} {model} [rounds]");
        string name = args.Length > 1 ? args[1] : "rmc1";
        int rounds = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 200;
        await using RecsysServer server = await RecsysServer.StartAsync(new ServeOptions
        {
            ModelsDirectory = Path.Combine(root, "models"),
            DataDirectory = Path.Combine(root, "data"),
            Port = 0,
            SiloPort = FreePort(),
            GatewayPort = FreePort(),
            ClusterId = "profile-" + Guid.NewGuid().ToString("N")[..6],
            WriteDemoModelWhenEmpty = false,
            EmbeddingMemoryBytes = 4L << 30,
            Deadline = TimeSpan.FromSeconds(30),
            Batching = new BatchingOptions { MaxBatch = 512, MaxDelay = TimeSpan.Zero },
        }, TextWriter.Null, loadModels: false);
        await server.Registry!.LoadNewestAsync(name);
        ServedModel model = await server.Registry.AcquireAsync(name, null);
        JsonNode requests = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(root, $"requests-{name}.json")))!;
        var parser = new RankRequestJson(model.Spec);
        byte[][] packed = requests["bodies"]!.AsArray().Select(b => ServingBenchmarks.ToMessagePack(b!)).ToArray();
        RankBatch[] batches = requests["bodies"]!.AsArray().Select(b => parser.Parse(Encoding.UTF8.GetBytes(b!.ToJsonString()))).ToArray();
        LookupBatch[] lookups = batches.Select(b => LookupBatch.Merge([RankInput.From(b)], model.Spec.DenseFeatures)).ToArray();
        using DlrmModel whole = DlrmModel.Load(server.Registry.Repository.VersionDirectory(name, model.Version));
        var tables = model.Spec.Tables;
        Console.WriteLine($"// {name}: {tables.Length} tables, batch {lookups[0].Batch}, {Environment.ProcessorCount} cores, load {LoadAverage()}");

        var empty = new PooledLookupRequest { Ids = [], Offsets = [0, 0] };
        IEmbeddingShardGrain[] shards = model.AllShards.ToArray();

        // Bytes the MessagePack reader allocates per request of 128 samples (this thread only: the reader is synchronous).
        for (int i = 0; i < 20; i++) Recsys.Router.Http.MessagePackRankReader.Parse(packed[i % packed.Length], model.Spec, 4096);
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++) Recsys.Router.Http.MessagePackRankReader.Parse(packed[i % packed.Length], model.Spec, 4096);
        Console.WriteLine($"// MessagePack reader: {(GC.GetAllocatedBytesForCurrentThread() - allocated) / 100} bytes allocated per request of {batches[0].Batch} samples ({packed[0].Length} bytes on the wire)");

        var stages = new (string Name, Func<int, Task> Pass)[]
        {
            ("parse MessagePack body", i => { Recsys.Router.Http.MessagePackRankReader.Parse(packed[i % packed.Length], model.Spec, 4096); return Task.CompletedTask; }),
            ("split ids per shard (all tables)", i =>
            {
                LookupBatch b = lookups[i % lookups.Length];
                for (int t = 0; t < tables.Length; t++) ShardSplitter.Split(b.Tables[t], tables[t].Rows, tables[t].Shards);
                return Task.CompletedTask;
            }),
            ("one empty grain call", _ => shards[0].Lookup(empty)),
            ($"{shards.Length} empty grain calls in parallel", _ => Task.WhenAll(shards.Select(s => s.Lookup(empty)))),
            ("fan-out: all shard calls of a batch", i => LookupFanOut.RunAsync(model, lookups[i % lookups.Length], default)),
            ("engine pass, grain calls", i => { model.ReadLocalShardsInPlace = false; return RankingEngine.RunAsync(model, lookups[i % lookups.Length]); }),
            ("engine pass, resident shards in place", i => { model.ReadLocalShardsInPlace = true; return RankingEngine.RunAsync(model, lookups[i % lookups.Length]); }),
            ("whole model in one process", i => { whole.Score(batches[i % batches.Length]); return Task.CompletedTask; }),
        };
        for (int round = 0; round < 3; round++)
        {
            foreach ((string stage, Func<int, Task> pass) in stages)
            {
                for (int i = 0; i < 10; i++) await pass(i);
                var times = new double[rounds];
                TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                for (int i = 0; i < rounds; i++)
                {
                    long start = Stopwatch.GetTimestamp();
                    await pass(i);
                    times[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                }
                // CPU time per pass (all threads of the process) is what the load of other processes disturbs least.
                double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMicroseconds / rounds;
                Array.Sort(times);
                Console.WriteLine($"round {round} {stage,-40} median {times[rounds / 2],8:F0} us  p10 {times[rounds / 10],8:F0}  p90 {times[rounds * 9 / 10],8:F0}  cpu {cpu,8:F0} us/pass");
            }
            Console.WriteLine($"// load {LoadAverage()}");
        }
        model.Release();
    }

    internal static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
