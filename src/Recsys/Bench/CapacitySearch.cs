using Recsys.Cli.Bench.Reporting;

namespace Recsys.Cli.Bench;

/// <summary>One rate tried by the search and whether it met the SLA.</summary>
public sealed record CapacityStep(double TargetQps, LoadResult Result, bool Pass, string Verdict);

/// <summary>When a step counts as sustained.</summary>
public sealed record CapacityCriteria(double SlaMs, double MaxErrorFraction = 0.01, double MinAchievedFraction = 0.9);

/// <summary>The highest sustained rate (0 if none) and every step behind it, in the order run.</summary>
public sealed record CapacityResult(double MaxQps, CapacityStep? Best, IReadOnlyList<CapacityStep> Steps, CapacityCriteria Criteria);

/// <summary>
/// Finds the highest Poisson rate whose p99 stays within the SLA, as MLPerf's server scenario
/// does: double the rate until a step fails, then bisect between the last pass and the first
/// failure until they are within <c>tolerance</c> of each other or the step budget is spent.
/// A step also fails when errors or client drops exceed the allowance, or when the server
/// answers far fewer requests than were offered (it is falling behind even if p99 looks fine).
/// </summary>
public static class CapacitySearch
{
    public static async Task<CapacityResult> RunAsync(
        Func<double, int, Task<LoadResult>> runStep, double startQps, double maxQps, int maxSteps, double tolerance, CapacityCriteria criteria,
        CancellationToken cancel)
    {
        if (!(startQps > 0)) throw new ArgumentOutOfRangeException(nameof(startQps), startQps, "the first rate must be > 0");
        var steps = new List<CapacityStep>();
        double lo = 0, hi = double.NaN;
        CapacityStep? best = null;

        async Task<bool> Try(double qps)
        {
            LoadResult r = await runStep(qps, steps.Count).ConfigureAwait(false);
            (bool pass, string verdict) = Judge(r, criteria);
            var step = new CapacityStep(qps, r, pass, verdict);
            steps.Add(step);
            if (pass && qps > lo)
            {
                lo = qps;
                best = step;
            }
            if (!pass && (double.IsNaN(hi) || qps < hi)) hi = qps;
            return pass;
        }

        // Ramp: doubling finds the order of magnitude in log2(capacity / start) steps.
        double q = Math.Min(startQps, maxQps);
        while (steps.Count < maxSteps && !cancel.IsCancellationRequested && await Try(q).ConfigureAwait(false))
        {
            if (q >= maxQps) return new CapacityResult(lo, best, steps, criteria);
            q = Math.Min(q * 2, maxQps);
        }
        // Bisect: the first step may already fail, in which case the bracket is (0, start).
        while (steps.Count < maxSteps && !cancel.IsCancellationRequested && !double.IsNaN(hi) && hi - lo > tolerance * hi && hi > 1)
        {
            await Try(lo == 0 ? hi / 2 : (lo + hi) / 2).ConfigureAwait(false);
        }
        return new CapacityResult(lo, best, steps, criteria);
    }

    public static (bool Pass, string Verdict) Judge(LoadResult r, CapacityCriteria c)
    {
        if (r.Ok == 0) return (false, "no successful answer");
        double bad = r.Scheduled == 0 ? 0 : (double)(r.ErrorCount + r.DroppedByClient) / r.Scheduled;
        if (bad > c.MaxErrorFraction) return (false, $"errors+drops {bad:P1} > {c.MaxErrorFraction:P1}");
        if (r.Latency.P99 > c.SlaMs) return (false, $"p99 {r.Latency.P99:0.##} ms > SLA {c.SlaMs} ms");
        if (r.Qps < c.MinAchievedFraction * r.TargetQps) return (false, $"achieved {r.Qps:0.#} < {c.MinAchievedFraction:P0} of target");
        return (true, "ok");
    }
}
