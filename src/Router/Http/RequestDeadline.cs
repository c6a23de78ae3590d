using Microsoft.AspNetCore.Http;
using Recsys.DenseCompute.Dlrm;

namespace Recsys.Router.Http;

/// <summary>The time a request may take: the server's deadline, or a shorter one the caller asks for in X-Deadline-Ms.</summary>
internal static class RequestDeadline
{
    /// <exception cref="InvalidRequestException">The header is not a non-negative integer (400, field X-Deadline-Ms).</exception>
    public static TimeSpan Read(HttpRequest request, TimeSpan serverDeadline)
    {
        string? header = request.Headers["X-Deadline-Ms"].FirstOrDefault();
        if (header is null) return serverDeadline;
        if (!int.TryParse(header, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int ms))
        {
            throw new InvalidRequestException("X-Deadline-Ms", $"'{header}' is not a non-negative number of milliseconds");
        }
        TimeSpan asked = TimeSpan.FromMilliseconds(ms);
        return asked < serverDeadline ? asked : serverDeadline;
    }

    /// <summary>
    /// Arms <paramref name="deadline"/> to cancel after <paramref name="budget"/>. A zero budget cancels
    /// now: CancelAfter(0) fires from a timer thread, and on a busy machine a short request could finish
    /// (for example inline on the caller's thread) before that timer runs and answer 200 instead of 504.
    /// </summary>
    public static void Arm(CancellationTokenSource deadline, TimeSpan budget)
    {
        if (budget <= TimeSpan.Zero) deadline.Cancel();
        else deadline.CancelAfter(budget);
    }
}
