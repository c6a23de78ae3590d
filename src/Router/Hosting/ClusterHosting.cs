using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Connections.Security;

namespace Recsys.Router.Hosting;

/// <summary>Membership, endpoints, failure detection and TLS of this node's silo.</summary>
internal static class ClusterHosting
{
    public static void Configure(ISiloBuilder silo, ServeOptions options)
    {
        if (options.RedisClustering is { } redis)
        {
            silo.Configure<ClusterOptions>(c =>
            {
                c.ClusterId = options.ClusterId;
                c.ServiceId = options.ServiceId;
            });
            // Listening on the advertised address (not "any") keeps a loopback cluster unreachable from outside.
            silo.ConfigureEndpoints(options.AdvertiseAddress, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: false);
            silo.UseRedisClustering(redis);
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

        if (options.TlsCertificatePath is { } path) UseTls(silo, path, options.TlsCertificatePassword);
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
