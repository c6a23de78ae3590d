using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Recsys.Cli.Bench.Workload;

namespace Recsys.Cli.Bench;

/// <summary>
/// The one server a run may touch: its base URL (loopback unless explicitly allowed otherwise)
/// and the model. Endpoints are derived from the base URL and nothing else.
/// </summary>
public sealed class BenchTarget : IDisposable
{
    private BenchTarget(Uri baseUri, string model, HttpClient http)
    {
        BaseUri = baseUri;
        Model = model;
        Http = http;
    }

    public Uri BaseUri { get; }
    public string Model { get; }
    public HttpClient Http { get; }
    public Uri RankEndpoint => new(BaseUri, $"v1/models/{Uri.EscapeDataString(Model)}/rank");
    public Uri MetricsEndpoint => new(BaseUri, "metrics");
    public Uri MetadataEndpoint => new(BaseUri, $"v2/models/{Uri.EscapeDataString(Model)}");

    /// <summary>Validates the URL: http(s), no path games, and a loopback host unless <paramref name="allowRemote"/>.</summary>
    public static Uri ParseUrl(string url, bool allowRemote)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new FormatException($"--url: '{url}' is not an http:// or https:// URL");
        }
        bool loopback = uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out IPAddress? ip) && IPAddress.IsLoopback(ip));
        if (!loopback && !allowRemote)
        {
            throw new FormatException($"--url: {uri.Host} is not a loopback address; a load test against another machine needs --allow-remote");
        }
        // A trailing slash makes relative endpoints resolve under the base path, not beside it.
        return uri.AbsolutePath.EndsWith('/') ? uri : new Uri(uri.ToString() + "/");
    }

    public static BenchTarget Create(Uri baseUri, string model, int maxConnections, TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = maxConnections,
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
        };
        return new BenchTarget(baseUri, model, new HttpClient(handler) { Timeout = timeout });
    }

    /// <summary>The request shape from the server's KServe metadata; rows and lookups given here override the server's.</summary>
    public async Task<WorkloadShape> ShapeFromServerAsync(long? rows, int? lookups, CancellationToken cancel)
    {
        using HttpResponseMessage response = await Http.GetAsync(MetadataEndpoint, cancel).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"GET {MetadataEndpoint} answered {(int)response.StatusCode}: is model '{Model}' served?"));
        }
        JsonNode metadata = await response.Content.ReadFromJsonAsync<JsonNode>(cancel).ConfigureAwait(false)
            ?? throw new FormatException($"GET {MetadataEndpoint} returned an empty body");
        return WorkloadShape.FromKServeMetadata(Model, metadata, rows, lookups);
    }

    public void Dispose() => Http.Dispose();
}
