namespace Recsys.Router.Serving;

/// <summary>
/// Where each shard of a model version was last seen: the silo named in its own answers (lookup
/// results and status reports). Only a routing hint: a shard reference reaches the shard wherever
/// it lives, so a stale entry costs a detour or a fallback, never a wrong score. Entries are
/// written by whichever batch hears from the shard last; readers see a whole address or null.
/// </summary>
public sealed class ShardLocations
{
    private readonly SiloAddress?[][] _silos;

    public ShardLocations(IReadOnlyList<int> shardsPerTable)
    {
        ArgumentNullException.ThrowIfNull(shardsPerTable);
        _silos = shardsPerTable.Select(s => new SiloAddress?[s]).ToArray();
    }

    /// <summary>Null when no report has arrived yet or the silo was forgotten after a failure.</summary>
    public SiloAddress? Get(int table, int shard) => Volatile.Read(ref _silos[table][shard]);

    /// <summary>Keeps the silo a shard reported; a report without a silo changes nothing.</summary>
    public void Record(int table, int shard, SiloAddress? silo)
    {
        if (silo is null) return;
        ref SiloAddress? entry = ref _silos[table][shard];
        if (!silo.Equals(Volatile.Read(ref entry))) Volatile.Write(ref entry, silo);
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

    /// <summary>Shards with a known silo.</summary>
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
