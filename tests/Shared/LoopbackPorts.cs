using System.Net;
using System.Net.Sockets;

namespace Recsys.Tests.Shared;

/// <summary>Ports for test servers and silos on loopback (linked into every test project that starts one).</summary>
internal static class LoopbackPorts
{
    private static readonly HashSet<int> s_handedOut = [];

    /// <summary>
    /// A port free now and never handed out before in this test run: the kernel may give a port it just
    /// released to the next bind-to-0, and a silo whose HTTP, silo or gateway ports came out equal cannot start.
    /// </summary>
    public static int Free()
    {
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            lock (s_handedOut)
            {
                if (s_handedOut.Add(port)) return port;
            }
        }
    }
}
