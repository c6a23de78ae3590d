namespace Recsys.Cli.Bench.Reporting;

/// <summary>
/// What one open-loop run measured, counting only requests scheduled after the warm-up.
/// Invariants: <c>Scheduled = Sent + Dropped</c> and <c>Sent = Ok + sum(Errors)</c>, because
/// every request sent is awaited (each has a timeout) before the result is built.
/// </summary>
public sealed record LoadResult
{
    public required double TargetQps { get; init; }

    /// <summary>Seconds from the end of the warm-up to where the schedule stopped (duration or request limit).</summary>
    public required double OfferedSeconds { get; init; }

    /// <summary>Seconds from the end of the warm-up to the last answer, or to the stop if that came later.</summary>
    public required double AnsweredSeconds { get; init; }

    public required long Scheduled { get; init; }
    public required long Sent { get; init; }
    public required long Ok { get; init; }

    /// <summary>By HTTP status ("429", "504") or transport failure ("timeout", "connection", "cancelled").</summary>
    public required IReadOnlyDictionary<string, long> Errors { get; init; }

    /// <summary>Arrivals not sent because the client's in-flight cap was reached.</summary>
    public required long DroppedByClient { get; init; }

    public required long OkSamples { get; init; }
    public required long OkLookups { get; init; }
    public required LatencySummary Latency { get; init; }

    /// <summary>From the scheduled instant to the send starting on a pool thread: the client's own delay, included in <see cref="Latency"/>.</summary>
    public LatencySummary ClientLag { get; init; } = LatencySummary.Empty;

    /// <summary>CPU time this process used from the end of the warm-up to the last answer: the client's own cost.</summary>
    public double ClientCpuSeconds { get; init; }

    public double ClientCpuMicrosPerRequest => Sent > 0 ? ClientCpuSeconds * 1e6 / Sent : 0;

    /// <summary>The server's own view over the run; null when /metrics could not be read.</summary>
    public ServerBreakdown? Server { get; init; }

    public long ErrorCount => Errors.Values.Sum();

    /// <summary>Successful answers per second: the throughput actually achieved.</summary>
    public double Qps => AnsweredSeconds > 0 ? Ok / AnsweredSeconds : 0;

    /// <summary>Requests put on the wire per second (what the schedule managed to send).</summary>
    public double OfferedQps => OfferedSeconds > 0 ? Sent / OfferedSeconds : 0;

    public double SamplesPerSecond => AnsweredSeconds > 0 ? OkSamples / AnsweredSeconds : 0;
    public double LookupsPerSecond => AnsweredSeconds > 0 ? OkLookups / AnsweredSeconds : 0;
}
