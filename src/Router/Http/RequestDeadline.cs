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
}
