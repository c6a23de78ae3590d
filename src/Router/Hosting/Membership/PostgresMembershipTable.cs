using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;

namespace Recsys.Router.Hosting.Membership;

/// <summary>
/// Orleans' membership table in PostgreSQL, in our own two tables (created on first use, so a
/// fresh database needs no script): one version row per cluster and one row per silo.
/// Orleans' protocol relies on optimistic concurrency: every write names the table version
/// (and the row's etag) it read, and loses if another silo wrote first. Each write is one
/// transaction that bumps the version row only when its etag still matches.
/// </summary>
public sealed class PostgresMembershipTable(NpgsqlDataSource database, IOptions<ClusterOptions> cluster) : IMembershipTable
{
    private readonly string clusterId = cluster.Value.ClusterId;

    public async Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        await using NpgsqlConnection connection = await database.OpenConnectionAsync().ConfigureAwait(false);
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        // Silos start together: the advisory lock keeps two CREATE TABLE IF NOT EXISTS from racing
        // on the catalog (PostgreSQL raises a unique violation for the loser otherwise).
        await ExecuteAsync(connection, transaction, "SELECT pg_advisory_xact_lock(7301560473)").ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, MembershipSchema.Create).ConfigureAwait(false);
        if (tryInitTableVersion)
        {
            await ExecuteAsync(connection, transaction,
                "INSERT INTO recsys_membership_version (cluster_id, version, etag) VALUES (@cluster, 0, 0) ON CONFLICT DO NOTHING",
                ("cluster", clusterId)).ConfigureAwait(false);
        }
        await transaction.CommitAsync().ConfigureAwait(false);
    }

    public async Task DeleteMembershipTableEntries(string clusterId)
    {
        await using NpgsqlConnection connection = await database.OpenConnectionAsync().ConfigureAwait(false);
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, "DELETE FROM recsys_membership WHERE cluster_id = @cluster", ("cluster", clusterId)).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, "DELETE FROM recsys_membership_version WHERE cluster_id = @cluster", ("cluster", clusterId)).ConfigureAwait(false);
        await transaction.CommitAsync().ConfigureAwait(false);
    }

    public async Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate)
    {
        await using NpgsqlConnection connection = await database.OpenConnectionAsync().ConfigureAwait(false);
        await ExecuteAsync(connection, null,
            "DELETE FROM recsys_membership WHERE cluster_id = @cluster AND status = @dead AND i_am_alive < @before",
            ("cluster", clusterId), ("dead", (int)SiloStatus.Dead), ("before", beforeDate.UtcDateTime)).ConfigureAwait(false);
    }

    public Task<MembershipTableData> ReadRow(SiloAddress key) =>
        ReadAsync("AND silo = @silo", ("cluster", clusterId), ("silo", key.ToParsableString()));

    public Task<MembershipTableData> ReadAll() => ReadAsync("", ("cluster", clusterId));

    public async Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion)
    {
        await using NpgsqlConnection connection = await database.OpenConnectionAsync().ConfigureAwait(false);
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        if (!await BumpVersionAsync(connection, transaction, tableVersion).ConfigureAwait(false)) return false;
        int inserted = await ExecuteAsync(connection, transaction,
            $"INSERT INTO recsys_membership ({MembershipSchema.Columns}, etag) VALUES ({MembershipSchema.Parameters}, 0) ON CONFLICT DO NOTHING",
            MembershipRow.Parameters(clusterId, entry)).ConfigureAwait(false);
        if (inserted == 0) return false;
        await transaction.CommitAsync().ConfigureAwait(false);
        return true;
    }

    public async Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion)
    {
        if (!long.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out long rowEtag)) return false;
        await using NpgsqlConnection connection = await database.OpenConnectionAsync().ConfigureAwait(false);
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        if (!await BumpVersionAsync(connection, transaction, tableVersion).ConfigureAwait(false)) return false;
        int updated = await ExecuteAsync(connection, transaction,
            $"UPDATE recsys_membership SET ({MembershipSchema.Columns}, etag) = ({MembershipSchema.Parameters}, etag + 1) " +
            "WHERE cluster_id = @cluster AND silo = @silo AND etag = @etag",
            [.. MembershipRow.Parameters(clusterId, entry), ("etag", rowEtag)]).ConfigureAwait(false);
        if (updated == 0) return false;
        await transaction.CommitAsync().ConfigureAwait(false);
        return true;
    }

    public async Task UpdateIAmAlive(MembershipEntry entry)
    {
        // Liveness only: Orleans does not version this column, so neither do we.
        await using NpgsqlConnection connection = await database.OpenConnectionAsync().ConfigureAwait(false);
        await ExecuteAsync(connection, null,
            "UPDATE recsys_membership SET i_am_alive = @alive WHERE cluster_id = @cluster AND silo = @silo",
            ("alive", entry.IAmAliveTime.ToUniversalTime()), ("cluster", clusterId), ("silo", entry.SiloAddress.ToParsableString())).ConfigureAwait(false);
    }

    private async Task<bool> BumpVersionAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, TableVersion expected)
    {
        if (!long.TryParse(expected.VersionEtag, NumberStyles.None, CultureInfo.InvariantCulture, out long etag)) return false;
        int updated = await ExecuteAsync(connection, transaction,
            "UPDATE recsys_membership_version SET version = @version, etag = etag + 1 WHERE cluster_id = @cluster AND etag = @etag",
            ("version", expected.Version), ("cluster", clusterId), ("etag", etag)).ConfigureAwait(false);
        return updated == 1;
    }

    private async Task<MembershipTableData> ReadAsync(string filter, params (string Name, object? Value)[] parameters)
    {
        await using NpgsqlConnection connection = await database.OpenConnectionAsync().ConfigureAwait(false);
        // One snapshot for the version and the rows, so a reader never pairs rows with a newer version.
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead).ConfigureAwait(false);
        TableVersion version;
        await using (NpgsqlCommand command = Command(connection, transaction,
            "SELECT version, etag FROM recsys_membership_version WHERE cluster_id = @cluster", ("cluster", clusterId)))
        await using (NpgsqlDataReader reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            version = await reader.ReadAsync().ConfigureAwait(false)
                ? new TableVersion(reader.GetInt32(0), reader.GetInt64(1).ToString(CultureInfo.InvariantCulture))
                : new TableVersion(0, "0");
        }

        var rows = new List<Tuple<MembershipEntry, string>>();
        await using (NpgsqlCommand command = Command(connection, transaction,
            $"SELECT {MembershipSchema.Columns}, etag FROM recsys_membership WHERE cluster_id = @cluster {filter}",
            parameters))
        await using (NpgsqlDataReader reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                rows.Add(Tuple.Create(MembershipRow.Read(reader), reader.GetInt64(MembershipSchema.ColumnCount).ToString(CultureInfo.InvariantCulture)));
            }
        }
        await transaction.CommitAsync().ConfigureAwait(false);
        return new MembershipTableData(rows, version);
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        await using NpgsqlCommand command = Command(connection, transaction, sql, parameters);
        return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    private static NpgsqlCommand Command(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection, transaction);
        foreach ((string name, object? value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }
}

/// <summary>Our tables: plain columns, so `psql` shows who is in the cluster and in what state.</summary>
internal static class MembershipSchema
{
    public const string Create = """
        CREATE TABLE IF NOT EXISTS recsys_membership_version (
            cluster_id text PRIMARY KEY,
            version integer NOT NULL,
            etag bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS recsys_membership (
            cluster_id text NOT NULL,
            silo text NOT NULL,
            status integer NOT NULL,
            proxy_port integer NOT NULL,
            host_name text NOT NULL,
            silo_name text NOT NULL,
            role_name text NOT NULL,
            update_zone integer NOT NULL,
            fault_zone integer NOT NULL,
            start_time timestamp with time zone NOT NULL,
            i_am_alive timestamp with time zone NOT NULL,
            suspect_times text NOT NULL,
            etag bigint NOT NULL,
            PRIMARY KEY (cluster_id, silo));
        """;

    public const string Columns = "cluster_id, silo, status, proxy_port, host_name, silo_name, role_name, update_zone, fault_zone, start_time, i_am_alive, suspect_times";
    public const string Parameters = "@cluster, @silo, @status, @proxy_port, @host_name, @silo_name, @role_name, @update_zone, @fault_zone, @start_time, @i_am_alive, @suspect_times";
    public const int ColumnCount = 12;
}

/// <summary>A MembershipEntry to and from one row of <see cref="MembershipSchema"/>.</summary>
internal static class MembershipRow
{
    public static (string, object?)[] Parameters(string clusterId, MembershipEntry entry) =>
    [
        ("cluster", clusterId),
        ("silo", entry.SiloAddress.ToParsableString()),
        ("status", (int)entry.Status),
        ("proxy_port", entry.ProxyPort),
        ("host_name", entry.HostName ?? ""),
        ("silo_name", entry.SiloName ?? ""),
        ("role_name", entry.RoleName ?? ""),
        ("update_zone", entry.UpdateZone),
        ("fault_zone", entry.FaultZone),
        ("start_time", entry.StartTime.ToUniversalTime()),
        ("i_am_alive", entry.IAmAliveTime.ToUniversalTime()),
        ("suspect_times", SuspectTimes(entry.SuspectTimes)),
    ];

    public static MembershipEntry Read(NpgsqlDataReader reader) => new()
    {
        SiloAddress = SiloAddress.FromParsableString(reader.GetString(1)),
        Status = (SiloStatus)reader.GetInt32(2),
        ProxyPort = reader.GetInt32(3),
        HostName = reader.GetString(4),
        SiloName = reader.GetString(5),
        RoleName = reader.GetString(6),
        UpdateZone = reader.GetInt32(7),
        FaultZone = reader.GetInt32(8),
        StartTime = reader.GetDateTime(9),
        IAmAliveTime = reader.GetDateTime(10),
        SuspectTimes = SuspectTimes(reader.GetString(11)),
    };

    /// <summary>"silo ticks;silo ticks": who suspects this silo and since when (UTC ticks).</summary>
    public static string SuspectTimes(List<Tuple<SiloAddress, DateTime>>? suspects)
    {
        if (suspects is null || suspects.Count == 0) return "";
        var text = new StringBuilder();
        foreach ((SiloAddress silo, DateTime at) in suspects)
        {
            if (text.Length > 0) text.Append(';');
            text.Append(silo.ToParsableString()).Append(' ').Append(at.ToUniversalTime().Ticks.ToString(CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }

    public static List<Tuple<SiloAddress, DateTime>> SuspectTimes(string text)
    {
        var suspects = new List<Tuple<SiloAddress, DateTime>>();
        foreach (string item in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            int at = item.LastIndexOf(' ');
            suspects.Add(Tuple.Create(
                SiloAddress.FromParsableString(item[..at]),
                new DateTime(long.Parse(item[(at + 1)..], NumberStyles.None, CultureInfo.InvariantCulture), DateTimeKind.Utc)));
        }
        return suspects;
    }
}
