using Recsys.OnnxModels.Seq2Seq;
using Recsys.Router.Scheduling;

namespace Recsys.Router.Translation;

/// <summary>
/// Runs a model's <see cref="DecodeBatch"/> on the shared compute scheduler, one decoder step per
/// unit at the interactive class and the earliest deadline of the batch's requests, so ranking
/// units (more urgent) and other models' units interleave between steps. At most one step of a
/// batch is queued or running at a time; the loop ends when the batch runs dry and the next
/// arrival starts it again.
/// </summary>
internal sealed class DecodeDriver(DecodeBatch batch, ComputeScheduler scheduler, string model)
{
    private readonly Lock _gate = new();
    private bool _running;
    private bool _closed;
    private volatile bool _abort;
    private Task _loop = Task.CompletedTask;

    /// <exception cref="ObjectDisposedException">The model is being unloaded.</exception>
    public Task<DecodeResult> Submit(int[] source, DecodeOptions options, long deadline, CancellationToken cancel)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            Task<DecodeResult> result = batch.Submit(source, options, deadline, cancel);
            if (!_running)
            {
                _running = true;
                _loop = Task.Run(LoopAsync, CancellationToken.None);
            }
            return result;
        }
    }

    private async Task LoopAsync()
    {
        while (true)
        {
            try
            {
                while (!_abort && await scheduler.RunAsync(model, WorkClass.Interactive, batch.EarliestDeadline, batch.RunStep).ConfigureAwait(false))
                {
                }
            }
            catch (Exception e)
            {
                // The scheduler is shutting down (or refused the unit): nobody will step this batch again.
                batch.Abandon(e as SchedulerRejectedException ?? new SchedulerRejectedException(model, $"decoding stopped: {e.Message}", TimeSpan.FromSeconds(1)));
            }
            lock (_gate)
            {
                if (_abort) batch.Abandon(new SchedulerRejectedException(model, "the model was unloaded", TimeSpan.FromSeconds(1)));
                // Submit enqueues under this lock, so work seen here was not handed to a new loop.
                if (_abort || !batch.HasWork)
                {
                    _running = false;
                    return;
                }
            }
        }
    }

    /// <summary>Refuses new requests, lets the live ones finish (up to <paramref name="drain"/>), then fails the rest.</summary>
    public async Task StopAsync(TimeSpan drain)
    {
        Task loop;
        lock (_gate)
        {
            _closed = true;
            loop = _loop;
        }
        try
        {
            await loop.WaitAsync(drain).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Past the drain time the loop stops at the next step and fails what is left.
        }
        _abort = true;
        await loop.ConfigureAwait(false);
    }
}
