using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Connections.Security;
using Recsys.Router.Hosting.Membership;

namespace Recsys.Router.Hosting;

/// <summary>Membership, endpoints, failure detection, grain directory and TLS of this node's silo.</summary>
internal static partial class ClusterHosting
{
    public static void Configure(ISiloBuilder silo, ServeOptions options)
    {
        if (options.RedisClustering is not null || options.PostgresClustering is not null)
        {
            silo.Configure<ClusterOptions>(c =>
            {
                c.ClusterId = options.ClusterId;
                c.ServiceId = options.ServiceId;
            });
            // Listening on the advertised address (not "any") keeps a loopback cluster unreachable from outside.
            silo.ConfigureEndpoints(options.AdvertiseAddress, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: false);
            if (options.RedisClustering is { } redis) silo.UseRedisClustering(redis);
            else silo.UsePostgresClustering(options.PostgresClustering!);
        }
        else
        {
            silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, options.PrimarySilo, options.ServiceId, options.ClusterId);
        }

        ClusterTiming timing = options.Timing;
        silo.Configure<ClusterMembershipOptions>(m =>
        {
            m.ProbeTimeout = timing.ProbeTimeout;
            m.NumMissedProbesLimit = timing.MissedProbesLimit;
            m.TableRefreshTimeout = timing.TableRefresh;
        });
        silo.Configure<SiloMessagingOptions>(m => m.ResponseTimeout = timing.ResponseTimeout);
        if (options.GrainDirectory == GrainDirectoryKind.Consistent) UseConsistentDirectory(silo);
        RaiseThreadPoolFloor(options.MinThreadPoolThreads);
        silo.Services.AddHostedService<ClusterSettingsLog>();

        if (options.TlsCertificatePath is { } path) UseTls(silo, path, options.TlsCertificatePassword);
    }

#pragma warning disable ORLEANSEXP003 // Orleans 10 marks it experimental; opt-in only, see GrainDirectoryKind.Consistent.
    private static void UseConsistentDirectory(ISiloBuilder silo) => silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003

    /// <summary>Process-wide: raises the worker-thread floor, never lowers it (a host with more cores already has more).</summary>
    private static void RaiseThreadPoolFloor(int workers)
    {
        ThreadPool.GetMinThreads(out int currentWorkers, out int io);
        if (workers > currentWorkers && !ThreadPool.SetMinThreads(workers, io))
        {
            throw new InvalidOperationException($"min-threads: the thread pool refused a floor of {workers} worker threads");
        }
    }

    /// <summary>
    /// One line at start with the failure-handling settings in force, so a failure timeline read
    /// from the logs knows what the silo was waiting for.
    /// </summary>
    private sealed partial class ClusterSettingsLog(
        IOptions<ClusterMembershipOptions> membership,
        IOptions<SiloMessagingOptions> messaging,
        IOptions<GrainDirectoryOptions> directory,
        ServeOptions serve,
        ILogger<ClusterSettingsLog> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            ClusterMembershipOptions m = membership.Value;
            ThreadPool.GetMinThreads(out int workers, out _);
            LogSettings(logger, Environment.ProcessId, serve.Role, m.ProbeTimeout.TotalMilliseconds, m.NumMissedProbesLimit, m.NumVotesForDeathDeclaration,
                m.TableRefreshTimeout.TotalSeconds, messaging.Value.ResponseTimeout.TotalSeconds, serve.GrainDirectory, directory.Value.RangeLeaseDuration.TotalSeconds, workers);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(Level = LogLevel.Information, Message = "Silo pid {Pid} role {Role}: probe {ProbeMs} ms x {MissedProbes} missed, {Votes} votes to declare death, " +
            "table refresh {RefreshS} s, response timeout {ResponseS} s, grain directory {Directory} (lease {LeaseS} s), thread pool floor {Workers}")]
        private static partial void LogSettings(ILogger logger, int pid, SiloRole role, double probeMs, int missedProbes, int votes, double refreshS,
            double responseS, GrainDirectoryKind directory, double leaseS, int workers);
    }

    /// <summary>
    /// Mutual TLS with one cluster certificate: every silo presents it and accepts only a peer
    /// presenting the same one, so a self-signed certificate needs no CA on the hosts.
    /// </summary>
    private static void UseTls(ISiloBuilder silo, string path, string? password)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"TLS certificate file '{path}' does not exist", path);
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            throw new InvalidOperationException($"TLS certificate '{path}' cannot be read as PFX/PKCS#12 (wrong password?): {e.Message}", e);
        }
        if (!certificate.HasPrivateKey) throw new InvalidOperationException($"TLS certificate '{path}' has no private key");
        string thumbprint = certificate.Thumbprint;
        silo.UseTls(certificate, tls =>
        {
            tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            tls.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
            tls.RemoteCertificateValidation = (remote, _, _) =>
                remote is not null && string.Equals(remote.GetCertHashString(), thumbprint, StringComparison.OrdinalIgnoreCase);
        });
    }
}
