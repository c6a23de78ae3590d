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
    public void More_chunks_than_a_range_can_hold_are_refused()
    {
        var pool = new ChunkWorkers("test-worker");
        Assert.True(pool.TryEnter());
        try
        {
            Assert.Equal("chunks", Assert.Throws<ArgumentOutOfRangeException>(() => pool.Run(new CountingJob(1), ChunkWorkers.MaxChunks + 1, 2)).ParamName);
        }
        finally
        {
            pool.Exit();
        }
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
