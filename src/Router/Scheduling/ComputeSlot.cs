namespace Recsys.Router.Scheduling;

/// <summary>
/// One worker's share of the compute held by async code (ranking's dense steps between awaits).
/// The holder computes on its own thread; while it holds the slot the scheduler runs one unit
/// fewer, so the cores stay within the budget. Dispose it as soon as the CPU part is done.
/// </summary>
public sealed class ComputeSlot : IDisposable, IAsyncDisposable
{
    private readonly ComputeScheduler _scheduler;
    private readonly ComputeScheduler.Dispatch _dispatch;
    private int _released;

    internal ComputeSlot(ComputeScheduler scheduler, ComputeScheduler.Dispatch dispatch)
    {
        _scheduler = scheduler;
        _dispatch = dispatch;
    }

    public string Model => _dispatch.Model;
    public WorkClass Class => _dispatch.Class;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) _scheduler.Finish(_dispatch, failed: false);
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
