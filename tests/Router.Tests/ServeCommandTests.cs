using System.Net;
using Recsys.Cli;
using Recsys.Cli.Commands;
using Recsys.Router.Hosting;

namespace Recsys.Router.Tests;

public sealed class ServeCommandTests
{
    private static readonly string[] Names =
        ["models", "data", "port", "listen", "role", "cluster", "silo-port", "gateway-port", "embedding-memory",
         "max-batch", "max-delay-ms", "queue", "deadline-ms", "max-body", "api-key", "compute-workers", "reserved-workers"];

    private static ServeOptions Parse(params string[] args) => ServeCommand.Parse(CliOptions.Parse(args, Names));

    [Fact]
    public void Defaults_are_a_single_loopback_node_with_every_role()
    {
        ServeOptions o = Parse();

        Assert.Equal(8080, o.Port);
        Assert.Equal(IPAddress.Loopback, o.Listen);
        Assert.Equal(SiloRole.All, o.Role);
        Assert.Null(o.PrimarySilo);
        Assert.Equal(512L << 20, o.EmbeddingMemoryBytes);
        Assert.Null(o.ApiKey);
    }

    [Fact]
    public void Scheduler_options_reach_the_server_settings()
    {
        ServeOptions defaults = Parse();
        Assert.Equal(0, defaults.ComputeWorkers);
        Assert.Equal(1, defaults.Scheduler.ReservedWorkers);

        ServeOptions o = Parse("--compute-workers", "3", "--reserved-workers", "0");
        Assert.Equal(3, o.ComputeWorkers);
        Assert.Equal(0, o.Scheduler.ReservedWorkers);
        CliException e = Assert.Throws<CliException>(() => Parse("--compute-workers", "-1"));
        Assert.Contains("--compute-workers", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_reach_the_server_settings()
    {
        ServeOptions o = Parse("--role", "embedding", "--cluster", "localhost:11111", "--embedding-memory", "8GB", "--max-body", "64KiB",
            "--max-batch", "32", "--max-delay-ms", "0.5", "--deadline-ms", "250", "--api-key", "k", "--listen", "0.0.0.0");

        Assert.Equal(SiloRole.Embedding, o.Role);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 11111), o.PrimarySilo);
        Assert.Equal(8L << 30, o.EmbeddingMemoryBytes);
        Assert.Equal(64L << 10, o.MaxBodyBytes);
        Assert.Equal(32, o.Batching.MaxBatch);
        Assert.Equal(TimeSpan.FromMilliseconds(0.5), o.Batching.MaxDelay);
        Assert.Equal(TimeSpan.FromMilliseconds(250), o.Deadline);
        Assert.Equal("k", o.ApiKey);
        Assert.Equal(IPAddress.Any, o.Listen);
    }

    [Theory]
    [InlineData("--role", "master", "--role")]
    [InlineData("--cluster", "consul://host:8500", "--cluster")]
    [InlineData("--cluster", "localhost:x", "--cluster")]
    [InlineData("--embedding-memory", "lots", "--embedding-memory")]
    [InlineData("--listen", "example.com", "--listen")]
    [InlineData("--port", "-1", "--port")]
    public void Bad_options_name_the_option(string option, string value, string named)
    {
        var e = Assert.Throws<CliException>(() => Parse(option, value));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }
}
