using Recsys.OnnxModels.Seq2Seq;
using Recsys.Router.Scheduling;

namespace Recsys.Router.Translation;

/// <summary>
/// Runs a model's <see cref="DecodeBatch"/> on the shared compute scheduler, one decoder step per
/// unit at the interactive class, so ranking
/// units (more urgent) and other models' units interleave between steps. At most one step of a
/// batch is queued or running at a time. Each step queues the next one from the compute worker
/// itself: no thread-pool hop between steps, which on a loaded host costs a wake-up per token.
/// The chain ends when the batch runs dry; the next arrival starts it again.
/// </summary>
internal sealed class DecodeDriver(DecodeBatch batch, ComputeScheduler scheduler, string model)
{
    private readonly Lock _gate = new();
    private bool _running;
    private bool _closed;
    private volatile bool _abort;
    private TaskCompletionSource _idle = Idle();

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
                _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                ScheduleStep();
            }
            return result;
        }
    }

    private static TaskCompletionSource Idle()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }

    private void ScheduleStep()
    {
        Task<bool> step;
        try
        {
            // A step carries every live request: admission or expiry must never drop it for one
            // request's deadline (that request leaves the batch through its own cancellation).
            // Without a deadline the scheduler orders the step by the class objective.
            step = scheduler.RunAsync(model, WorkClass.Interactive, long.MaxValue, StepThenContinue);
        }
        catch (ObjectDisposedException e)
        {
            Stop(new SchedulerRejectedException(model, $"decoding stopped: {e.Message}", TimeSpan.FromSeconds(1)));
            return;
        }
        // A unit the scheduler abandons (shutdown) never runs: nobody else will step this batch.
        step.ContinueWith(t => Stop(t.Exception?.InnerException as SchedulerRejectedException
            ?? new SchedulerRejectedException(model, "decoding stopped", TimeSpan.FromSeconds(1))),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>One step on a compute worker, then the next step queued from here.</summary>
    private bool StepThenContinue()
    {
        bool more = !_abort && batch.RunStep();
        lock (_gate)
        {
            // Submit enqueues under this lock, so work seen here was not handed to a new chain.
            if (_abort || !(more || batch.HasWork))
            {
                if (_abort) batch.Abandon(new SchedulerRejectedException(model, "the model was unloaded", TimeSpan.FromSeconds(1)));
                _running = false;
                _idle.TrySetResult();
                return false;
            }
        }
        ScheduleStep();
        return true;
    }

    private void Stop(Exception reason)
    {
        lock (_gate)
        {
            batch.Abandon(reason);
            _running = false;
            _idle.TrySetResult();
        }
    }

    /// <summary>Refuses new requests, lets the live ones finish (up to <paramref name="drain"/>), then fails the rest.</summary>
    public async Task StopAsync(TimeSpan drain)
    {
        Task idle;
        lock (_gate)
        {
            _closed = true;
            idle = _idle.Task;
        }
        try
        {
            await idle.WaitAsync(drain).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Past the drain time the chain stops at its next step and fails what is left.
            _abort = true;
            await idle.ConfigureAwait(false);
        }
    }
}
