using System.Diagnostics;
using Recsys.Cli.Bench.Reporting;
using Recsys.DenseCompute.Dlrm;

namespace Recsys.Cli.Bench;

/// <summary>Offline (MLPerf Offline scenario) totals: every thread scores the same batch back to back.</summary>
public sealed record OfflineResult(
    int Threads, int Batch, double Seconds, long Batches, long Samples, LatencySummary Latency,
    double BottomSeconds, double PoolSeconds, double TopSeconds, long LookupsPerBatch, long PooledBytesPerBatch)
{
    public double BatchesPerSecond => Seconds > 0 ? Batches / Seconds : 0;
    public double SamplesPerSecond => Seconds > 0 ? Samples / Seconds : 0;
    public double RowsPerSecond => Seconds > 0 ? (double)Batches * LookupsPerBatch / Seconds : 0;
    public double PooledBytesPerSecond => Seconds > 0 ? (double)Batches * PooledBytesPerBatch / Seconds : 0;
}

/// <summary>
/// The engine without network or batching: <see cref="DlrmModel"/> split into its public stages
/// (bottom MLP, embedding pooling, interaction + top MLP) so each one is timed on its own,
/// with buffers allocated once per thread so the loop measures the kernels, not the allocator.
/// </summary>
public static class OfflineRunner
{
    public static OfflineResult Run(DlrmModel model, RankBatch batch, int threads, TimeSpan duration, long maxBatches, Action<long, double>? progress, CancellationToken cancel)
    {
        var recorder = new LatencyRecorder();
        long batches = 0;
        double bottomTicks = 0, poolTicks = 0, topTicks = 0;
        var stagesLock = new Lock();
        long start = Stopwatch.GetTimestamp();
        long end = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        int pooledWidth = model.Spec.Tables.Sum(t => t.Dim);

        var workers = new Thread[threads];
        for (int w = 0; w < threads; w++)
        {
            workers[w] = new Thread(() =>
            {
                float[] bottom = new float[Math.Max(1, batch.Batch * model.Spec.BottomOutput)];
                float[] pooled = new float[Math.Max(1, batch.Batch * pooledWidth)];
                float[] scores = new float[batch.Batch * model.Spec.Events];
                long b = 0, p = 0, t = 0;
                while (!cancel.IsCancellationRequested && Stopwatch.GetTimestamp() < end && Interlocked.Increment(ref batches) <= maxBatches)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    model.Dense.Bottom(batch.Dense, batch.Batch, bottom);
                    long t1 = Stopwatch.GetTimestamp();
                    model.Pool(batch, pooled);
                    long t2 = Stopwatch.GetTimestamp();
                    model.Dense.Top(bottom, pooled, batch.Batch, scores);
                    long t3 = Stopwatch.GetTimestamp();
                    b += t1 - t0;
                    p += t2 - t1;
                    t += t3 - t2;
                    recorder.RecordMicros((t3 - t0) * 1_000_000 / Stopwatch.Frequency);
                }
                lock (stagesLock)
                {
                    bottomTicks += b;
                    poolTicks += p;
                    topTicks += t;
                }
            })
            { IsBackground = true, Name = $"offline-{w}" };
            workers[w].Start();
        }
        // Joined one at a time with a timeout so the progress line keeps moving while they run.
        foreach (Thread worker in workers)
        {
            while (!worker.Join(500)) progress?.Invoke(recorder.Count, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        long done = recorder.Count;
        double f = Stopwatch.Frequency;
        long lookups = batch.Sparse.Sum(s => (long)s.Ids.Length);
        long bytes = batch.Sparse.Select((s, i) => (long)s.Ids.Length * model.Spec.Tables[i].RowBytes).Sum();
        return new OfflineResult(threads, batch.Batch, seconds, done, done * batch.Batch, recorder.Summarize(),
            bottomTicks / f, poolTicks / f, topTicks / f, lookups, bytes);
    }
}
