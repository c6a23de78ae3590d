using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Recsys.Router.Hosting;

using Recsys.Tests.Shared;

namespace Recsys.Cluster.Tests;

/// <summary>
/// Silo-to-silo TLS with one cluster certificate from a PFX file: two silos in this process
/// (localhost membership, cheaper than processes) rank through TLS connections, and the silo port
/// completes a TLS handshake presenting that certificate.
/// </summary>
public sealed class SiloTlsTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "recsys-tls-tests-" + Guid.NewGuid().ToString("N")[..8]);
    private X509Certificate2 _certificate = null!;
    private string _pfx = "";

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        using RSA key = RSA.Create(2048);
        var request = new CertificateRequest("CN=recsys-cluster-test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using X509Certificate2 created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        _pfx = Path.Combine(_root, "cluster.pfx");
        File.WriteAllBytes(_pfx, created.Export(X509ContentType.Pfx, "test-password"));
        _certificate = X509CertificateLoader.LoadPkcs12FromFile(_pfx, "test-password");
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Two_silos_with_the_cluster_certificate_rank_over_tls_and_the_silo_port_speaks_tls()
    {
        string models = Path.Combine(_root, "models");
        string modelDir = Path.Combine(models, LoopbackCluster.Model, "1");
        string fixture = Path.Combine(AppContext.BaseDirectory, "fixtures", "dlrm", LoopbackCluster.Model);
        Directory.CreateDirectory(modelDir);
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(fixture, "model.json")))!.AsObject();
        foreach (JsonNode? t in spec["tables"]!.AsArray()) t!["shards"] = 4;
        File.WriteAllText(Path.Combine(modelDir, "model.json"), spec.ToJsonString());
        File.Copy(Path.Combine(fixture, "weights.safetensors"), Path.Combine(modelDir, "weights.safetensors"));

        int primarySilo = LoopbackPorts.Free();
        var options = new ServeOptions
        {
            ModelsDirectory = models,
            DataDirectory = Path.Combine(_root, "data"),
            Port = 0,
            SiloPort = primarySilo,
            GatewayPort = LoopbackPorts.Free(),
            ClusterId = "tls-" + Guid.NewGuid().ToString("N")[..6],
            WriteDemoModelWhenEmpty = false,
            Deadline = TimeSpan.FromSeconds(20),
            TlsCertificatePath = _pfx,
            TlsCertificatePassword = "test-password",
        };
        await using RecsysServer primary = await RecsysServer.StartAsync(options, TextWriter.Null, loadModels: false);
        await using RecsysServer secondary = await RecsysServer.StartAsync(options with
        {
            Role = SiloRole.Embedding,
            SiloPort = LoopbackPorts.Free(),
            GatewayPort = LoopbackPorts.Free(),
            PrimarySilo = new IPEndPoint(IPAddress.Loopback, primarySilo),
        }, TextWriter.Null, loadModels: false);
        await primary.LoadModelsAsync();

        ScoredRequest[] requests = RankLoad.Requests(modelDir, 6, seed: 4);
        using var http = new HttpClient { BaseAddress = primary.Address, Timeout = TimeSpan.FromSeconds(30) };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < requests.Length; i++)
        {
            RankOutcome o = await RankLoad.RankOnceAsync(http, requests[i], i, clock);
            Assert.True(o.Status == HttpStatusCode.OK && !o.WrongScores, RankLoad.Describe(o));
        }

        // The secondary's silo port answers a TLS handshake with the cluster certificate.
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, secondary.Options.SiloPort);
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "recsys-cluster-test",
            ClientCertificates = new X509CertificateCollection { _certificate },
        });
        Assert.True(tls.IsAuthenticated);
        Assert.Equal(_certificate.Thumbprint, tls.RemoteCertificate!.GetCertHashString());
    }

    public Task DisposeAsync()
    {
        _certificate?.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // FASTER may hold a file for a moment.
        }
        return Task.CompletedTask;
    }
}
