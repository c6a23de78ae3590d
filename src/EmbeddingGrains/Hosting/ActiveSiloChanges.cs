namespace Recsys.EmbeddingGrains.Hosting;

/// <summary>
/// Tells a change of the active silo set apart from a membership snapshot that only repeats it.
/// Orleans 10.4.2 republishes the snapshot on every membership table refresh (and on a busy front
/// end about once a second) with the same version and statuses; the rebalancer waits for membership
/// to be quiet, and counting those repeats as changes kept it waiting forever on some silos.
/// </summary>
public sealed class ActiveSiloChanges
{
    private HashSet<SiloAddress>? _active;

    /// <summary>True for the first snapshot and whenever a silo became or stopped being active since the last true.</summary>
    public bool Changed(ClusterMembershipSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        SiloAddress[] now = Active(snapshot);
        if (_active is not null && _active.SetEquals(now)) return false;
        _active = [.. now];
        return true;
    }

    public static SiloAddress[] Active(ClusterMembershipSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress).ToArray();
    }
}
