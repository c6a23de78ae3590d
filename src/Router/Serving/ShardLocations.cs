namespace Recsys.Router.Serving;

/// <summary>
/// Where each shard of a model version was last seen: the silo named in its own answers (lookup
/// results and status reports). Only a routing hint: a shard reference reaches the shard wherever
/// it lives, so a stale entry costs a detour or a fallback, never a wrong score. Entries are
/// written by whichever batch hears from the shard last; readers see a whole address or null.
/// Each replica of a shard has its own entry (replica r of shard s at s * R + r).
/// </summary>
public sealed class ShardLocations
{
    private readonly SiloAddress?[][] _silos;
    private readonly int[] _replicas;

    /// <param name="replicasPerTable">Replicas of each shard per table; null: one each.</param>
    public ShardLocations(IReadOnlyList<int> shardsPerTable, IReadOnlyList<int>? replicasPerTable = null)
    {
        ArgumentNullException.ThrowIfNull(shardsPerTable);
        if (replicasPerTable is not null && replicasPerTable.Count != shardsPerTable.Count)
        {
            throw new ArgumentException($"{replicasPerTable.Count} replica counts for {shardsPerTable.Count} tables", nameof(replicasPerTable));
        }
        _replicas = shardsPerTable.Select((_, t) => replicasPerTable?[t] ?? 1).ToArray();
        _silos = shardsPerTable.Select((s, t) => new SiloAddress?[s * _replicas[t]]).ToArray();
    }

    /// <summary>Null when no report has arrived yet or the silo was forgotten after a failure.</summary>
    public SiloAddress? Get(int table, int shard, int replica = 0) => Volatile.Read(ref _silos[table][Slot(table, shard, replica)]);

    /// <summary>Keeps the silo a shard (replica 0) reported; a report without a silo changes nothing.</summary>
    public void Record(int table, int shard, SiloAddress? silo) => Record(table, shard, 0, silo);

    /// <summary>Keeps the silo a shard replica reported; a report without a silo changes nothing.</summary>
    public void Record(int table, int shard, int replica, SiloAddress? silo)
    {
        if (silo is null) return;
        ref SiloAddress? entry = ref _silos[table][Slot(table, shard, replica)];
        if (!silo.Equals(Volatile.Read(ref entry))) Volatile.Write(ref entry, silo);
    }

    private int Slot(int table, int shard, int replica)
    {
        int replicas = _replicas[table];
        if ((uint)replica >= (uint)replicas) throw new ArgumentOutOfRangeException(nameof(replica), replica, $"table {table} has {replicas} replica(s) per shard");
        return shard * replicas + replica;
    }

    /// <summary>Drops every entry naming <paramref name="silo"/> (its host failed); returns how many.</summary>
    public int Forget(SiloAddress silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        int forgotten = 0;
        foreach (SiloAddress?[] table in _silos)
        {
            for (int s = 0; s < table.Length; s++)
            {
                SiloAddress? seen = Volatile.Read(ref table[s]);
                if (seen is not null && seen.Equals(silo) && Interlocked.CompareExchange(ref table[s], null, seen) == seen) forgotten++;
            }
        }
        return forgotten;
    }

    /// <summary>Shard replicas with a known silo.</summary>
    public int Known
    {
        get
        {
            int known = 0;
            foreach (SiloAddress?[] table in _silos)
            {
                for (int s = 0; s < table.Length; s++) known += Volatile.Read(ref table[s]) is null ? 0 : 1;
            }
            return known;
        }
    }
}
