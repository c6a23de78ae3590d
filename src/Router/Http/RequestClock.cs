using System.Diagnostics;
using Microsoft.AspNetCore.Http;

namespace Recsys.Router.Http;

/// <summary>
/// One API request's time: when it started, its budget (the server's deadline, or a shorter
/// X-Deadline-Ms) and the token that fires at that deadline or when the client goes away.
/// Budget and countdown both start at <see cref="Started"/>, so the scheduler's deadline timestamp
/// and the token agree on when the request's time is up.
/// </summary>
internal sealed class RequestClock : IDisposable
{
    private readonly HttpContext _context;
    private readonly CancellationTokenSource _deadline;

    public RequestClock(HttpContext context, TimeSpan serverDeadline)
    {
        _context = context;
        Started = Stopwatch.GetTimestamp();
        Budget = serverDeadline;
        _deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
    }

    /// <summary>Stopwatch timestamp of the request's arrival.</summary>
    public long Started { get; }

    public TimeSpan Budget { get; private set; }

    /// <summary>Fires at the deadline or when the client goes away.</summary>
    public CancellationToken Token => _deadline.Token;

    /// <summary>Stopwatch timestamp the compute scheduler orders and refuses by.</summary>
    public long DeadlineTimestamp => Started + (long)(Budget.TotalSeconds * Stopwatch.Frequency);

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(Started);

    /// <summary>What the error mapping needs to know of this request's time when it failed.</summary>
    public RequestTime Now => new(Budget, Elapsed, _deadline.IsCancellationRequested, _context.RequestAborted.IsCancellationRequested);

    /// <summary>
    /// Reads X-Deadline-Ms and starts the countdown. Called inside the request's try, because a bad
    /// header is a 400 naming it like any other bad field.
    /// </summary>
    /// <exception cref="Recsys.DenseCompute.Dlrm.InvalidRequestException">X-Deadline-Ms is not a non-negative integer.</exception>
    public void Arm()
    {
        Budget = RequestDeadline.Read(_context.Request, Budget);
        RequestDeadline.Arm(_deadline, Budget - Elapsed);
    }

    public void Dispose() => _deadline.Dispose();
}

/// <summary>A failed request's time as the error mapping sees it.</summary>
/// <param name="Budget">The time the request had.</param>
/// <param name="Elapsed">The time it took until it failed.</param>
/// <param name="DeadlinePassed">Its deadline token fired (also true when the client went away: the token is linked to it).</param>
/// <param name="ClientGone">The client closed the connection.</param>
internal readonly record struct RequestTime(TimeSpan Budget, TimeSpan Elapsed, bool DeadlinePassed, bool ClientGone);
