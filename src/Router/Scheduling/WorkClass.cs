namespace Recsys.Router.Scheduling;

/// <summary>Priority classes of the shared compute, most urgent first.</summary>
public enum WorkClass
{
    /// <summary>Ranking: latency-critical (p99 objective 30 ms by default).</summary>
    Ranking = 0,

    /// <summary>Translation: interactive, tens of milliseconds per request.</summary>
    Interactive = 1,

    /// <summary>Vision and video: throughput, may wait.</summary>
    BestEffort = 2,
}
