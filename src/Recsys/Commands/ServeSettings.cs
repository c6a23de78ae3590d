using System.Collections;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Recsys.Cli.Commands;

/// <summary>
/// Layers the serve options: command line over environment (RECSYS_SILO_PORT for --silo-port)
/// over a JSON file (--config or RECSYS_CONFIG) over the defaults, so a container can be
/// configured entirely by environment and a host by one file per role.
/// </summary>
public static class ServeSettings
{
    public const string EnvironmentPrefix = "RECSYS_";

    public static string EnvironmentName(string option) => EnvironmentPrefix + option.ToUpperInvariant().Replace('-', '_');

    public static CliOptions Merge(CliOptions commandLine, IReadOnlyCollection<string> names, IDictionary environment)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(environment);
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        string? configFile = commandLine.Get("config") ?? environment[EnvironmentName("config")] as string;
        if (!string.IsNullOrEmpty(configFile))
        {
            foreach ((string name, string value) in ReadFile(configFile, names)) merged[name] = value;
        }
        foreach (string name in names)
        {
            if (environment[EnvironmentName(name)] is string { Length: > 0 } value) merged[name] = value;
        }
        foreach (string name in names)
        {
            if (commandLine.Get(name) is { } value) merged[name] = value;
        }
        var args = new List<string>(merged.Count * 2);
        foreach ((string name, string value) in merged)
        {
            args.Add("--" + name);
            args.Add(value);
        }
        return CliOptions.Parse(args, names);
    }

    /// <summary>A JSON object of option names (without "--") to strings, numbers or booleans.</summary>
    public static IEnumerable<(string Name, string Value)> ReadFile(string path, IReadOnlyCollection<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        if (!File.Exists(path)) throw new CliException($"--config: file '{path}' does not exist");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new CliException($"--config: '{path}' is not JSON: {e.Message}");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw new CliException($"--config: '{path}' must hold a JSON object of option names to values");
            var values = new List<(string, string)>();
            foreach (JsonProperty p in document.RootElement.EnumerateObject())
            {
                if (p.Name == "config" || !names.Contains(p.Name)) throw new CliException($"--config: '{path}' has unknown option '{p.Name}' (known: {string.Join(", ", names.Where(n => n != "config"))})");
                string value = p.Value.ValueKind switch
                {
                    JsonValueKind.String => p.Value.GetString()!,
                    JsonValueKind.Number => p.Value.GetRawText(),
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    _ => throw new CliException($"--config: '{path}': option '{p.Name}' must be a string, number or boolean"),
                };
                values.Add((p.Name, value));
            }
            return values;
        }
    }

    /// <summary>An IP address, or a host name resolved to its first IPv4 address (a container's own name).</summary>
    public static IPAddress ResolveAddress(string option, string text)
    {
        if (IPAddress.TryParse(text, out IPAddress? address)) return address;
        try
        {
            IPAddress[] all = Dns.GetHostAddresses(text);
            return all.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? all.FirstOrDefault()
                ?? throw new CliException($"--{option}: host '{text}' has no address");
        }
        catch (SocketException e)
        {
            throw new CliException($"--{option}: '{text}' is neither an IP address nor a resolvable host ({e.Message})");
        }
    }
}

/// <summary>Where membership lives: a localhost primary silo, or a Redis or PostgreSQL membership table.</summary>
public sealed record ClusterChoice(IPEndPoint? Primary, string? Redis, string? Postgres = null)
{
    public static ClusterChoice Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text == "localhost") return new ClusterChoice(null, null);
        if (text.StartsWith("localhost:", StringComparison.Ordinal))
        {
            return int.TryParse(text["localhost:".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p is > 0 and < 65536
                ? new ClusterChoice(new IPEndPoint(IPAddress.Loopback, p), null)
                : throw new CliException($"--cluster: '{text}' is not localhost:PORT");
        }
        if (text.StartsWith("redis://", StringComparison.OrdinalIgnoreCase)) return new ClusterChoice(null, RedisConfiguration(text));
        if (text.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || text.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            return new ClusterChoice(null, null, PostgresConfiguration(text));
        }
        throw new CliException($"--cluster: '{text}' is not localhost, localhost:PORT, redis://HOST:PORT or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE");
    }

    /// <summary>postgres://user[:password]@host[:port]/database to an Npgsql connection string.</summary>
    private static string PostgresConfiguration(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out Uri? uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new CliException($"--cluster: '{text}' is not postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE");
        }
        string database = Uri.UnescapeDataString(uri.AbsolutePath.Trim('/'));
        if (database.Length == 0) throw new CliException($"--cluster: '{text}' names no database (postgres://USER@HOST:PORT/DATABASE)");
        if (uri.Query.Length > 1) throw new CliException($"--cluster: '{text}': query parameters are not supported");
        string[] user = uri.UserInfo.Split(':', 2);
        if (user[0].Length == 0) throw new CliException($"--cluster: '{text}' names no user (postgres://USER@HOST:PORT/DATABASE)");
        var builder = new Npgsql.NpgsqlConnectionStringBuilder
        {
            Host = uri.HostNameType == UriHostNameType.IPv6 ? uri.IdnHost.Trim('[', ']') : uri.IdnHost,
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
            Username = Uri.UnescapeDataString(user[0]),
            Database = database,
        };
        if (user.Length == 2) builder.Password = Uri.UnescapeDataString(user[1]);
        return builder.ConnectionString;
    }

    /// <summary>redis://[:password@]host:port[?password=...] to the StackExchange.Redis form "host:port,password=...".</summary>
    private static string RedisConfiguration(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out Uri? uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new CliException($"--cluster: '{text}' is not redis://HOST:PORT");
        }
        int port = uri.IsDefaultPort || uri.Port < 0 ? 6379 : uri.Port;
        string host = uri.HostNameType == UriHostNameType.IPv6 ? $"[{uri.IdnHost}]" : uri.IdnHost;
        string configuration = $"{host}:{port.ToString(CultureInfo.InvariantCulture)}";
        string? password = uri.UserInfo.Contains(':', StringComparison.Ordinal) ? Uri.UnescapeDataString(uri.UserInfo[(uri.UserInfo.IndexOf(':', StringComparison.Ordinal) + 1)..]) : null;
        foreach (string pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] kv = pair.Split('=', 2);
            if (kv[0] == "password" && kv.Length == 2) password = Uri.UnescapeDataString(kv[1]);
            else throw new CliException($"--cluster: '{text}': unknown query parameter '{kv[0]}' (only password)");
        }
        return password is null ? configuration : $"{configuration},password={password}";
    }
}
