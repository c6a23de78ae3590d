using System.Diagnostics;
using System.Threading.Channels;
using Recsys.Router.Metrics;
using Recsys.Router.Repository;
using Recsys.Router.Scheduling;
using Recsys.Router.Serving;

namespace Recsys.Router.Batching;

/// <summary>
/// The per-model dynamic batcher: requests queue in a bounded channel; a loop takes the first one,
/// gathers more until the batch is full or the first has waited MaxDelay, and hands the merged
/// batch to the engine. Requests whose deadline passed while queued are dropped, not computed.
/// </summary>
public sealed class ModelBatcher : IAsyncDisposable
{
    private readonly ServedModel _model;
    private readonly BatchingOptions _options;
    private readonly Channel<PendingRank> _queue;
    private readonly SemaphoreSlim _running;
    private readonly Task _loop;
    private readonly List<Task> _batches = [];
    private PendingRank? _carry;

    public ModelBatcher(ServedModel model, BatchingOptions options)
    {
        _model = model;
        _options = options;
        _queue = Channel.CreateBounded<PendingRank>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _running = new SemaphoreSlim(options.MaxConcurrentBatches, options.MaxConcurrentBatches);
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>
    /// A Ranking-class share of the compute for <paramref name="samples"/> samples, or null when the
    /// batcher has no scheduler. No deadline: a ranking batch is never refused or dropped by the
    /// scheduler (its requests time out on their own tokens, which end <paramref name="giveUp"/>);
    /// it is ordered by arrival + the ranking objective.
    /// </summary>
    public async Task<ComputeSlot?> AcquireComputeAsync(int samples, CancellationToken giveUp)
    {
        if (_options.Scheduler is not { } scheduler) return null;
        return await scheduler.AcquireAsync(_model.Name, WorkClass.Ranking, long.MaxValue, samples, giveUp).ConfigureAwait(false);
    }

    /// <summary>The slot the engine takes around one dense step, or null when the batcher holds one around the whole batch (or there is no scheduler).</summary>
    public Task<ComputeSlot?> EngineSlotAsync(int samples, CancellationToken giveUp) =>
        _options.EngineTakesSlots ? AcquireComputeAsync(samples, giveUp) : Task.FromResult<ComputeSlot?>(null);

    /// <summary>Queues a request; its task ends with Batch x Events scores, or canceled when the token fires first.</summary>
    /// <exception cref="QueueFullException">The bounded queue is full.</exception>
    public Task<float[]> RankAsync(RankInput input, CancellationToken deadline)
    {
        var pending = new PendingRank(input, deadline);
        if (!_queue.Writer.TryWrite(pending)) throw new QueueFullException(_model.Name, _options.QueueCapacity);
        return pending.Completion.Task;
    }

    private async Task LoopAsync()
    {
        ChannelReader<PendingRank> reader = _queue.Reader;
        var batch = new List<PendingRank>();
        while (true)
        {
            PendingRank first;
            if (_carry is not null)
            {
                first = _carry;
                _carry = null;
            }
            else
            {
                if (!await reader.WaitToReadAsync().ConfigureAwait(false)) break;
                if (!reader.TryRead(out first!)) continue;
            }
            batch.Add(first);
            int samples = first.Input.Batch;
            await GatherAsync(reader, batch, samples, first.Arrived).ConfigureAwait(false);

            await _running.WaitAsync().ConfigureAwait(false);
            PendingRank[] taken = [.. batch];
            batch.Clear();
            Task run = Task.Run(() => RunBatchAsync(taken));
            lock (_batches)
            {
                _batches.RemoveAll(t => t.IsCompleted);
                _batches.Add(run);
            }
        }
    }

    private async Task GatherAsync(ChannelReader<PendingRank> reader, List<PendingRank> batch, int samples, long arrived)
    {
        while (samples < _options.MaxBatch)
        {
            if (reader.TryRead(out PendingRank? next))
            {
                if (samples + next.Input.Batch > _options.MaxBatch)
                {
                    _carry = next;
                    return;
                }
                batch.Add(next);
                samples += next.Input.Batch;
                continue;
            }
            TimeSpan left = _options.MaxDelay - Stopwatch.GetElapsedTime(arrived);
            if (left <= TimeSpan.Zero) return;
            using var timer = new CancellationTokenSource(left);
            try
            {
                if (!await reader.WaitToReadAsync(timer.Token).ConfigureAwait(false)) return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task RunBatchAsync(PendingRank[] taken)
    {
        try
        {
            // Expired or abandoned requests leave here: their samples are never looked up.
            var live = new List<PendingRank>(taken.Length);
            foreach (PendingRank p in taken)
            {
                if (p.Deadline.IsCancellationRequested) p.Completion.TrySetCanceled(p.Deadline);
                else live.Add(p);
            }
            if (live.Count == 0) return;
            ModelMetrics metrics = _model.Metrics;
            foreach (PendingRank p in live) metrics.Observe(Stage.Queue, Stopwatch.GetElapsedTime(p.Arrived));
            LookupBatch merged = LookupBatch.Merge(live.Select(p => p.Input).ToList(), _model.Spec.DenseFeatures);
            metrics.CountBatch(merged.Batch);
            using var giveUp = new BatchGiveUp(live.Select(p => p.Deadline).ToList());
            float[] scores;
            ComputeSlot? slot = _options.EngineTakesSlots ? null : await AcquireComputeAsync(merged.Batch, giveUp.Token).ConfigureAwait(false);
            try
            {
                scores = await RankingEngine.RunAsync(_model, merged, giveUp.Token).ConfigureAwait(false);
            }
            finally
            {
                slot?.Dispose();
            }
            int events = _model.Spec.Events, at = 0;
            foreach (PendingRank p in live)
            {
                int length = p.Input.Batch * events;
                p.Completion.TrySetResult(live.Count == 1 ? scores : scores.AsSpan(at, length).ToArray());
                at += length;
            }
        }
        catch (Exception e)
        {
            foreach (PendingRank p in taken) p.Completion.TrySetException(e);
        }
        finally
        {
            _running.Release();
        }
    }

    /// <summary>Stops taking requests, finishes the queued ones, then returns.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        Task[] running;
        lock (_batches) running = [.. _batches];
        await Task.WhenAll(running).ConfigureAwait(false);
        _running.Dispose();
    }

    private sealed class PendingRank(RankInput input, CancellationToken deadline)
    {
        public RankInput Input { get; } = input;
        public CancellationToken Deadline { get; } = deadline;
        public long Arrived { get; } = Stopwatch.GetTimestamp();
        public TaskCompletionSource<float[]> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
