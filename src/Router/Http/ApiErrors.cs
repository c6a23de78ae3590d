using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Recsys.Router.Http;

/// <summary>Every error answer is JSON naming the field: {"error": "field: problem", "field": ..., "status": ...}.</summary>
internal static class ApiErrors
{
    public static async Task WriteAsync(HttpContext context, int status, string field, string message, TimeSpan? retryAfter = null)
    {
        HttpResponse response = context.Response;
        if (response.HasStarted) return;
        response.StatusCode = status;
        if (retryAfter is { } wait) response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        response.ContentType = "application/json";
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("error", message.StartsWith(field + ":", StringComparison.Ordinal) ? message : $"{field}: {message}");
            writer.WriteString("field", field);
            writer.WriteNumber("status", status);
            writer.WriteEndObject();
        }
        await response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), context.RequestAborted).ConfigureAwait(false);
    }
}
