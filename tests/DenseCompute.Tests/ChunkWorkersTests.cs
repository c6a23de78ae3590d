using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Tests;

public class ChunkWorkersTests
{
    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 2)]
    [InlineData(2, 3)]
    [InlineData(2, 16)]
    [InlineData(3, 2)]
    [InlineData(3, 17)]
    [InlineData(4, 64)]
    public void Every_chunk_runs_exactly_once_per_call(int threads, int chunks)
    {
        var pool = new ChunkWorkers("test-worker");
        var job = new CountingJob(chunks);
        Assert.True(pool.TryEnter());
        try
        {
            for (int call = 1; call <= 500; call++)
            {
                pool.Run(job, chunks, threads);
                for (int i = 0; i < chunks; i++)
                {
                    Assert.True(job.Runs[i] == call, $"{threads} threads, {chunks} chunks: after call {call} chunk {i} ran {job.Runs[i]} times");
                }
            }
        }
        finally
        {
            pool.Exit();
        }
    }

    [Fact]
    public void A_narrower_job_after_a_wider_one_still_runs_every_chunk_once()
    {
        var pool = new ChunkWorkers("test-worker");
        Assert.True(pool.TryEnter());
        try
        {
            foreach ((int threads, int chunks) in new[] { (4, 40), (2, 9), (3, 5), (2, 2), (4, 3) })
            {
                var job = new CountingJob(chunks);
                for (int call = 1; call <= 100; call++) pool.Run(job, chunks, threads);
                Assert.All(job.Runs, runs => Assert.Equal(100, runs));
            }
        }
        finally
        {
            pool.Exit();
        }
    }

    [Fact]
    public void A_failing_chunk_is_rethrown_to_the_caller_and_the_pool_keeps_working()
    {
        var pool = new ChunkWorkers("test-worker");
        Assert.True(pool.TryEnter());
        try
        {
            var failing = new FailingJob(failAt: 5);
            var error = Assert.Throws<InvalidOperationException>(() => pool.Run(failing, 8, 2));
            Assert.Equal("chunk 5 failed", error.Message);

            var job = new CountingJob(8);
            pool.Run(job, 8, 2);
            Assert.All(job.Runs, runs => Assert.Equal(1, runs));
        }
        finally
        {
            pool.Exit();
        }
    }

    [Fact]
    public void Chunk_counts_a_range_cannot_hold_and_zero_threads_are_refused()
    {
        var pool = new ChunkWorkers("test-worker");
        Assert.True(pool.TryEnter());
        try
        {
            Assert.Equal("chunks", Assert.Throws<ArgumentOutOfRangeException>(() => pool.Run(new CountingJob(1), ChunkWorkers.MaxChunks + 1, 2)).ParamName);
            Assert.Equal("chunks", Assert.Throws<ArgumentOutOfRangeException>(() => pool.Run(new CountingJob(1), -1, 2)).ParamName);
            Assert.Equal("threads", Assert.Throws<ArgumentOutOfRangeException>(() => pool.Run(new CountingJob(1), 1, 0)).ParamName);
        }
        finally
        {
            pool.Exit();
        }
    }

    [Fact]
    public void A_trace_records_every_chunk_once_inside_its_call()
    {
        const int calls = 200, chunks = 6;
        var pool = new ChunkWorkers("test-worker") { Trace = new ChunkTrace(calls, calls * chunks) };
        var job = new CountingJob(chunks);
        Assert.True(pool.TryEnter());
        try
        {
            for (int call = 0; call < calls; call++) pool.Run(job, chunks, 2);
        }
        finally
        {
            pool.Exit();
        }

        ChunkTrace trace = pool.Trace;
        Assert.Equal(calls, trace.Calls.Length);
        Assert.Equal(calls * chunks, trace.Chunks.Length);
        var seen = new int[calls, chunks];
        foreach (ChunkTrace.ChunkRecord r in trace.Chunks)
        {
            ChunkTrace.CallRecord call = trace.Calls[r.Call];
            seen[r.Call, r.Chunk]++;
            Assert.InRange(r.Thread, 0, 1);
            Assert.True(call.Publish <= r.Start && r.Start <= r.End && r.End <= call.Joined, $"call {r.Call} chunk {r.Chunk}: ran [{r.Start}, {r.End}] outside publish {call.Publish} .. join {call.Joined}");
        }

        foreach (int s in seen) Assert.Equal(1, s);
        foreach (ChunkTrace.CallRecord call in trace.Calls)
        {
            Assert.Equal(chunks, call.Chunks);
            Assert.True(call.Publish <= call.CallerDone && call.CallerDone <= call.Joined, "caller finished its chunks outside its call");
        }
    }

    [Fact]
    public void A_caller_only_trace_keeps_every_chunk_on_the_caller()
    {
        var pool = new ChunkWorkers("test-worker") { Trace = new ChunkTrace(50, 50 * 4) { CallerOnly = true } };
        var job = new CountingJob(4);
        Assert.True(pool.TryEnter());
        try
        {
            for (int call = 0; call < 50; call++) pool.Run(job, 4, 2);
        }
        finally
        {
            pool.Exit();
        }

        Assert.All(job.Runs, runs => Assert.Equal(50, runs));
        Assert.Equal(200, pool.Trace.Chunks.Length);
        foreach (ChunkTrace.ChunkRecord r in pool.Trace.Chunks) Assert.Equal(0, r.Thread);
    }

    private sealed class CountingJob(int chunks) : IChunkJob
    {
        public int[] Runs { get; } = new int[chunks];

        public void RunChunk(int index) => Interlocked.Increment(ref Runs[index]);
    }

    private sealed class FailingJob(int failAt) : IChunkJob
    {
        public void RunChunk(int index)
        {
            if (index == failAt) throw new InvalidOperationException($"chunk {index} failed");
        }
    }
}
