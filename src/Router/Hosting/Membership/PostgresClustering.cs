using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Orleans.Messaging;

namespace Recsys.Router.Hosting.Membership;

/// <summary>Membership in PostgreSQL for silos (`--cluster postgres://...`) and for cluster clients.</summary>
public static class PostgresClustering
{
    public static ISiloBuilder UsePostgresClustering(this ISiloBuilder silo, string connectionString)
    {
        silo.Services.AddSingleton(_ => NpgsqlDataSource.Create(connectionString));
        silo.Services.AddSingleton<IMembershipTable, PostgresMembershipTable>();
        return silo;
    }

    public static IClientBuilder UsePostgresClustering(this IClientBuilder client, string connectionString)
    {
        client.Services.AddSingleton(_ => NpgsqlDataSource.Create(connectionString));
        client.Services.AddSingleton<IGatewayListProvider, PostgresGatewayList>();
        return client;
    }
}
