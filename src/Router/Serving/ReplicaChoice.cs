namespace Recsys.Router.Serving;

/// <summary>
/// Which replica of a shard gets the next call: the one with the fewest calls outstanding from this
/// front end (a cheap, local stand-in for "least loaded": a slow or busy silo keeps its calls
/// longer), ties in rank order (replica 0 first, on the silo the placement ranks first). Replicas
/// that failed recently are passed over while a healthy sibling exists, so a dead silo costs one
/// failed call per cool-down, not one per request; when all have failed recently the least busy
/// is tried anyway (better than failing without asking).
/// </summary>
public static class ReplicaChoice
{
    /// <param name="outstanding">Calls in flight per replica.</param>
    /// <param name="coolingUntil">Per replica, Environment.TickCount64 until which it counts as failed (0: never failed).</param>
    /// <param name="now">Environment.TickCount64 of the choice.</param>
    /// <param name="excluded">Bit r set: replica r is not wanted (this call already waits on it or saw it fail). Replicas from 64 on cannot be excluded.</param>
    /// <returns>The replica to call; -1 when every replica is excluded.</returns>
    public static int Pick(ReadOnlySpan<int> outstanding, ReadOnlySpan<long> coolingUntil, long now, ulong excluded = 0)
    {
        if (coolingUntil.Length != outstanding.Length) throw new ArgumentException($"coolingUntil has {coolingUntil.Length} entries for {outstanding.Length} replicas", nameof(coolingUntil));
        int healthy = -1, any = -1;
        for (int r = 0; r < outstanding.Length; r++)
        {
            if (r < 64 && (excluded & (1UL << r)) != 0) continue;
            int load = outstanding[r];
            if (any < 0 || load < outstanding[any]) any = r;
            if (coolingUntil[r] <= now && (healthy < 0 || load < outstanding[healthy])) healthy = r;
        }
        return healthy >= 0 ? healthy : any;
    }
}
