using Recsys.DenseCompute.Models;
using System.Globalization;
using Recsys.Cli.Bench.Workload;

namespace Recsys.Cli.Bench.Arrivals;

/// <summary>
/// When the next request is due, as a gap in seconds after the previous one. Open-loop: the
/// schedule never looks at responses, so a slow server shows up as queueing, not as fewer sends.
/// </summary>
public abstract class ArrivalProcess
{
    protected ArrivalProcess(double qps)
    {
        if (!(qps > 0) || !double.IsFinite(qps)) throw new ArgumentOutOfRangeException(nameof(qps), qps, "the arrival rate must be a positive number of requests per second");
        Qps = qps;
    }

    public double Qps { get; }

    public abstract double NextGapSeconds();

    /// <summary>"poisson" (default) or "fixed" at the given rate.</summary>
    public static ArrivalProcess Parse(string text, double qps, ulong seed) => text switch
    {
        "poisson" => new PoissonArrivals(qps, seed),
        "fixed" => new FixedArrivals(qps),
        _ => throw new ArgumentException($"arrivals '{text}' is not one of poisson, fixed", nameof(text)),
    };
}

/// <summary>
/// Exponential gaps: independent users, as production traffic and MLPerf's server scenario
/// model it. Bursts of several requests inside one mean gap are what makes queueing visible.
/// </summary>
public sealed class PoissonArrivals(double qps, ulong seed) : ArrivalProcess(qps)
{
    private readonly SplitMix _rng = new(seed);

    // Inversion: -ln(1-U)/lambda; 1-U is in (0, 1], so the log is finite.
    public override double NextGapSeconds() => -Math.Log(1.0 - _rng.NextDouble()) / Qps;
}

/// <summary>Evenly spaced sends: the best case, to tell queueing caused by bursts from queueing caused by load.</summary>
public sealed class FixedArrivals(double qps) : ArrivalProcess(qps)
{
    public override double NextGapSeconds() => 1.0 / Qps;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"fixed {Qps} qps");
}
