using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.Benchmarks;

public enum IdDistribution
{
    Uniform,
    Zipf,
}

/// <summary>
/// Shared inputs of the shard benchmarks: one fp32 table (written once as safetensors, reused by
/// every case) and pre-generated CSR requests of ~4096 ids per call.
/// </summary>
internal static class ShardBenchData
{
    public const int Dim = 64;
    public const int IdsPerCall = 4096;
    /// <summary>Distinct requests: enough that a measured run never repeats one (a repeated uniform
    /// request would let the row cache learn its ids and inflate the hit rate).</summary>
    public const int Requests = 512;

    /// <summary>Requests [0, WarmupRequests) warm the paths; measurement starts after them.</summary>
    public const int WarmupRequests = 64;

    public static long Rows => long.TryParse(Environment.GetEnvironmentVariable("SHARD_BENCH_ROWS"), out long r) ? r : 1_000_000;

    public static string Root { get; } = Path.Combine(Path.GetTempPath(), $"recsys-shard-bench-{Environment.ProcessId}");

    private static readonly Lazy<string> Model = new(WriteModel);

    /// <summary>A model repository with model "bench" version "1" holding one table "t" (fp32) and "q" (int8), both Rows x 64, one shard.</summary>
    public static string ModelsDirectory => Path.GetDirectoryName(Path.GetDirectoryName(Model.Value))!;

    public static string WeightsFile => Path.Combine(Model.Value, "weights.safetensors");

    public static string TableName(RowFormat format) => format == RowFormat.Int8 ? "q" : "t";

    public static int TableIndex(RowFormat format) => format == RowFormat.Int8 ? 1 : 0;

    private static string WriteModel()
    {
        string dir = Path.Combine(Root, "models", "bench", "1");
        Directory.CreateDirectory(dir);
        long rows = Rows;
        File.WriteAllText(Path.Combine(dir, "model.json"), $$"""
            {"kind":"dlrm","dense_features":0,"bottom_mlp":[],"top_mlp":[1],"interaction":"cat","weights":"weights.safetensors",
             "tables":[{"name":"t","rows":{{rows}},"dim":{{Dim}},"storage":"fp32","shards":1},
                       {"name":"q","rows":{{rows}},"dim":{{Dim}},"storage":"int8","shards":1}]}
            """);
        var rng = new Random(1);
        var chunk = new float[Dim * 4096];
        using var writer = new SafeTensorsWriter(Path.Combine(dir, "weights.safetensors"),
            [(DlrmSpec.EmbeddingWeightName(0), [rows, Dim]), (DlrmSpec.EmbeddingWeightName(1), [rows, Dim])]);
        for (int table = 0; table < 2; table++)
        {
            for (long r = 0; r < rows; r += 4096)
            {
                int n = (int)Math.Min(4096, rows - r);
                for (int i = 0; i < n * Dim; i++) chunk[i] = (float)(rng.NextDouble() * 2 - 1);
                writer.Write(chunk.AsSpan(0, n * Dim));
            }
        }
        return dir;
    }

    /// <summary>The whole table as a flat EmbeddingTable in <paramref name="format"/>: the peer kernel's input.</summary>
    public static EmbeddingTable FlatTable(RowFormat format)
    {
        using SafeTensorsFile file = SafeTensorsFile.Open(WeightsFile);
        SafeTensorInfo info = file.Get(DlrmSpec.EmbeddingWeightName(TableIndex(format)));
        var table = new EmbeddingTable(Rows, Dim, format);
        var row = new float[Dim];
        for (long r = 0; r < Rows; r++)
        {
            file.ReadFloats(info, r * Dim, row);
            RowCodec.Encode(row, format, table.Row(r));
        }
        return table;
    }

    /// <summary>Requests of IdsPerCall ids in bags of <paramref name="pooling"/>; Zipf ranks are hashed over the rows, as recommendation ids are.</summary>
    public static (long[] Ids, int[] Offsets)[] MakeRequests(IdDistribution distribution, int pooling, int seed)
    {
        var rng = new Random(seed);
        long rows = Rows;
        ZipfSampler? zipf = distribution == IdDistribution.Zipf ? ZipfSampler.For(rows, 0.99) : null;
        int bags = IdsPerCall / pooling;
        var requests = new (long[], int[])[Requests];
        for (int q = 0; q < Requests; q++)
        {
            var ids = new long[bags * pooling];
            var offsets = new int[bags + 1];
            for (int b = 0; b <= bags; b++) offsets[b] = b * pooling;
            for (int j = 0; j < ids.Length; j++)
            {
                long rank = zipf?.Sample(rng) ?? rng.NextInt64(rows);
                // 2654435761 is odd and prime, so this permutes [0, rows) whenever rows is not a multiple of it.
                ids[j] = zipf is null ? rank : (long)((ulong)rank * 2654435761UL % (ulong)rows);
            }
            requests[q] = (ids, offsets);
        }
        return requests;
    }

    public static void Cleanup(string directory)
    {
        try
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Zipf(s) over ranks 0..n-1 by inverse CDF (binary search over cumulative weights).</summary>
internal sealed class ZipfSampler
{
    private static readonly Dictionary<(long, double), ZipfSampler> Cache = [];
    private readonly double[] _cdf;

    private ZipfSampler(long n, double s)
    {
        _cdf = new double[n];
        double sum = 0;
        for (long k = 0; k < n; k++)
        {
            sum += 1.0 / Math.Pow(k + 1, s);
            _cdf[k] = sum;
        }
        for (long k = 0; k < n; k++) _cdf[k] /= sum;
    }

    public static ZipfSampler For(long n, double s)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue((n, s), out ZipfSampler? z)) Cache[(n, s)] = z = new ZipfSampler(n, s);
            return z;
        }
    }

    public long Sample(Random rng)
    {
        int i = Array.BinarySearch(_cdf, rng.NextDouble());
        return i >= 0 ? i : Math.Min(~i, _cdf.Length - 1);
    }
}
