using System.Net;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Messaging;

namespace Recsys.Router.Hosting.Membership;

/// <summary>
/// The gateways a cluster client may connect to, read from the PostgreSQL membership table:
/// every active silo that opened a gateway port.
/// </summary>
public sealed class PostgresGatewayList(NpgsqlDataSource database, IOptions<ClusterOptions> cluster, IOptions<GatewayOptions> gateways) : IGatewayListProvider
{
    public TimeSpan MaxStaleness => gateways.Value.GatewayListRefreshPeriod;

    public bool IsUpdatable => true;

    public Task InitializeGatewayListProvider() => Task.CompletedTask;

    public async Task<IList<Uri>> GetGateways()
    {
        await using NpgsqlConnection connection = await database.OpenConnectionAsync().ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            "SELECT silo, proxy_port FROM recsys_membership WHERE cluster_id = @cluster AND status = @active AND proxy_port > 0", connection);
        command.Parameters.AddWithValue("cluster", cluster.Value.ClusterId);
        command.Parameters.AddWithValue("active", (int)SiloStatus.Active);
        var uris = new List<Uri>();
        try
        {
            await using NpgsqlDataReader reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                SiloAddress silo = SiloAddress.FromParsableString(reader.GetString(0));
                uris.Add(SiloAddress.New(new IPEndPoint(silo.Endpoint.Address, reader.GetInt32(1)), silo.Generation).ToGatewayUri());
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            // No silo has started yet (silos create the tables): no gateway either.
        }
        return uris;
    }
}
