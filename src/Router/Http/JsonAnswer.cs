using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Recsys.Router.Http;

/// <summary>A 200 answer whose JSON object is written straight into the response pipe, as every endpoint answers.</summary>
internal static class JsonAnswer
{
    /// <summary>
    /// Writes {...} with <paramref name="fields"/> inside. The state is passed through rather than
    /// captured, so a static lambda costs the scoring path no closure per request.
    /// </summary>
    public static async Task WriteAsync<TState>(HttpContext context, TState state, Action<Utf8JsonWriter, TState> fields, CancellationToken cancel)
    {
        HttpResponse response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "application/json";
        using (var writer = new Utf8JsonWriter(response.BodyWriter))
        {
            writer.WriteStartObject();
            fields(writer, state);
            writer.WriteEndObject();
        }
        await response.BodyWriter.FlushAsync(cancel).ConfigureAwait(false);
    }
}
