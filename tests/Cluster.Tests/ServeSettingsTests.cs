using System.Collections;
using Recsys.Cli;
using Recsys.Cli.Commands;

namespace Recsys.Cluster.Tests;

/// <summary>Option layering (command line > environment > --config file > defaults) and the --cluster forms.</summary>
public sealed class ServeSettingsTests : IDisposable
{
    private static readonly string[] Names = ["role", "cluster", "silo-port", "port", "advertise", "config"];
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"recsys-serve-{Guid.NewGuid():N}.json");

    [Fact]
    public void Command_line_beats_environment_which_beats_the_config_file()
    {
        File.WriteAllText(_file, """{ "role": "embedding", "silo-port": 11112, "port": 8181, "cluster": "redis://file:1" }""");
        var environment = new Hashtable { ["RECSYS_SILO_PORT"] = "22222", ["RECSYS_CLUSTER"] = "redis://env:2", ["RECSYS_CONFIG"] = _file };
        CliOptions merged = ServeSettings.Merge(CliOptions.Parse(["--cluster", "redis://cli:3"], Names), Names, environment);

        Assert.Equal("redis://cli:3", merged.Get("cluster"));
        Assert.Equal("22222", merged.Get("silo-port"));
        Assert.Equal("embedding", merged.Get("role"));
        Assert.Equal("8181", merged.Get("port"));
        Assert.Null(merged.Get("advertise"));
    }

    [Fact]
    public void Config_file_with_an_unknown_option_names_the_file_and_the_option()
    {
        File.WriteAllText(_file, """{ "role": "embedding", "silo-prot": 11112 }""");
        var e = Assert.Throws<CliException>(() => ServeSettings.Merge(CliOptions.Parse(["--config", _file], Names), Names, new Hashtable()));
        Assert.Contains("silo-prot", e.Message, StringComparison.Ordinal);
        Assert.Contains(_file, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("redis://127.0.0.1:6390", "127.0.0.1:6390")]
    [InlineData("redis://cache", "cache:6379")]
    [InlineData("redis://:s3cret@cache:7000", "cache:7000,password=s3cret")]
    [InlineData("redis://cache:7000?password=p%40ss", "cache:7000,password=p@ss")]
    public void Redis_urls_become_stackexchange_configurations(string url, string expected)
    {
        ClusterChoice choice = ClusterChoice.Parse(url);
        Assert.Equal(expected, choice.Redis);
        Assert.Null(choice.Primary);
    }

    [Fact]
    public void Localhost_forms_and_errors()
    {
        Assert.Equal(new ClusterChoice(null, null), ClusterChoice.Parse("localhost"));
        Assert.Equal(11111, ClusterChoice.Parse("localhost:11111").Primary!.Port);
        Assert.Contains("consul://x", Assert.Throws<CliException>(() => ClusterChoice.Parse("consul://x")).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgres://recsys@127.0.0.1:5433/members", "127.0.0.1", 5433, "recsys", null, "members")]
    [InlineData("postgresql://app:p%40ss@db/recsys", "db", 5432, "app", "p@ss", "recsys")]
    public void Postgres_urls_become_npgsql_connection_strings(string url, string host, int port, string user, string? password, string database)
    {
        var parsed = new Npgsql.NpgsqlConnectionStringBuilder(ClusterChoice.Parse(url).Postgres!);
        Assert.Equal(host, parsed.Host);
        Assert.Equal(port, parsed.Port);
        Assert.Equal(user, parsed.Username);
        Assert.Equal(password, parsed.Password);
        Assert.Equal(database, parsed.Database);
    }

    [Theory]
    [InlineData("postgres://db", "names no database")]
    [InlineData("postgres://db:5432/recsys", "names no user")]
    [InlineData("postgres://u@db/recsys?sslmode=require", "query parameters")]
    public void Postgres_urls_that_cannot_work_are_named(string url, string expected)
    {
        string message = Assert.Throws<CliException>(() => ClusterChoice.Parse(url)).Message;
        Assert.Contains(url, message, StringComparison.Ordinal);
        Assert.Contains(expected, message, StringComparison.Ordinal);
    }

    public void Dispose() => File.Delete(_file);
}
