using Recsys.DenseCompute.Models;
using Recsys.Cli.Bench.Arrivals;
using Recsys.Cli.Bench.Workload;

namespace Recsys.Router.Tests;

/// <summary>The load generator's random processes against their analytic distributions, on fixed seeds (no flakiness).</summary>
public sealed class BenchDistributionTests
{
    [Theory]
    [InlineData(50.0, 1UL)]
    [InlineData(2000.0, 7UL)]
    public void Poisson_gaps_have_mean_and_sd_one_over_the_rate(double qps, ulong seed)
    {
        var arrivals = new PoissonArrivals(qps, seed);
        const int n = 200_000;
        double sum = 0, sumSq = 0;
        for (int i = 0; i < n; i++)
        {
            double g = arrivals.NextGapSeconds();
            Assert.True(g >= 0, $"gap {i} is negative: {g}");
            sum += g;
            sumSq += g * g;
        }
        double mean = sum / n, sd = Math.Sqrt(sumSq / n - mean * mean);
        // Standard error of the mean is 1/sqrt(n) = 0.22% of it: 1% is > 4 sigma.
        Assert.InRange(mean * qps, 0.99, 1.01);
        // Exponential: sd equals the mean (a fixed schedule would give 0).
        Assert.InRange(sd / mean, 0.97, 1.03);
    }

    [Fact]
    public void Poisson_gaps_are_memoryless_past_one_mean()
    {
        var arrivals = new PoissonArrivals(100, 3);
        int n = 0, longer = 0, muchLonger = 0;
        for (int i = 0; i < 200_000; i++)
        {
            double g = arrivals.NextGapSeconds() * 100;
            if (g > 1)
            {
                n++;
                if (g > 2) longer++;
            }
            if (g > 3) muchLonger++;
        }
        // P(gap > 2/lambda | gap > 1/lambda) = P(gap > 1/lambda) = e^-1; P(gap > 3/lambda) = e^-3.
        Assert.InRange((double)longer / n, Math.Exp(-1) - 0.01, Math.Exp(-1) + 0.01);
        Assert.InRange(muchLonger / 200_000.0, Math.Exp(-3) - 0.003, Math.Exp(-3) + 0.003);
    }

    [Fact]
    public void Same_seed_replays_the_same_schedule_and_another_seed_does_not()
    {
        double[] a = Gaps(new PoissonArrivals(50, 42)), b = Gaps(new PoissonArrivals(50, 42)), c = Gaps(new PoissonArrivals(50, 43));
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);

        static double[] Gaps(ArrivalProcess p) => [.. Enumerable.Range(0, 100).Select(_ => p.NextGapSeconds())];
    }

    [Fact]
    public void Fixed_arrivals_are_evenly_spaced()
    {
        var arrivals = ArrivalProcess.Parse("fixed", 40, 1);
        for (int i = 0; i < 10; i++) Assert.Equal(0.025, arrivals.NextGapSeconds(), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => new FixedArrivals(0));
        Assert.Throws<ArgumentException>(() => ArrivalProcess.Parse("bursty", 10, 1));
    }

    [Theory]
    [InlineData(100, 0.99)]
    [InlineData(100, 1.0)]
    [InlineData(50, 1.3)]
    [InlineData(200, 0.5)]
    public void Zipf_rank_frequencies_match_the_analytic_pmf(int n, double s)
    {
        var zipf = new ZipfIds(n, s, permutation: null);
        var rng = new SplitMix(11);
        const int draws = 400_000;
        var counts = new long[n + 1];
        for (int i = 0; i < draws; i++)
        {
            long k = zipf.NextRank(rng);
            Assert.InRange(k, 1, n);
            counts[k]++;
        }
        double harmonic = Enumerable.Range(1, n).Sum(k => Math.Pow(k, -s));
        double chi2 = 0;
        for (int k = 1; k <= n; k++)
        {
            double expected = draws * Math.Pow(k, -s) / harmonic;
            chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
        }
        // Chi-square with n-1 degrees of freedom: mean n-1, sd sqrt(2(n-1)); 6 sd above the mean
        // is far beyond the 0.1% critical value, yet a sampler off by a few percent on the head
        // ranks exceeds it by an order of magnitude.
        double bound = (n - 1) + 6 * Math.Sqrt(2.0 * (n - 1));
        Assert.True(chi2 < bound, $"chi-square {chi2:0.0} >= {bound:0.0} for n={n}, s={s}");
        // The head is where a wrong sampler shows first: rank 1 within 2% of its probability.
        double p1 = 1 / harmonic;
        Assert.InRange(counts[1] / (double)draws, p1 * 0.98, p1 * 1.02);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(1000)]
    [InlineData(4097)]
    public void Id_permutation_is_a_bijection(int n)
    {
        var permutation = new IdPermutation(n, 5);
        var seen = new bool[n];
        for (int i = 0; i < n; i++)
        {
            long v = permutation.Map(i);
            Assert.InRange(v, 0, n - 1);
            Assert.False(seen[v], $"{v} reached twice");
            seen[v] = true;
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => permutation.Map(n));
    }

    [Fact]
    public void Zipf_ids_scatter_the_hot_ranks_but_keep_their_frequencies()
    {
        const long rows = 1_000_000;
        var permutation = new IdPermutation(rows, 9);
        var ids = (ZipfIds)IdSampler.Parse("zipf:0.99", rows, 9);
        var rng = new SplitMix(3);
        long hottest = permutation.Map(0), hits = 0;
        const int draws = 200_000;
        for (int i = 0; i < draws; i++)
        {
            long id = ids.Next(rng);
            Assert.InRange(id, 0, rows - 1);
            if (id == hottest) hits++;
        }
        double harmonic = 0;
        for (long k = 1; k <= rows; k++) harmonic += Math.Pow(k, -0.99);
        Assert.InRange(hits / (double)draws, 0.95 / harmonic, 1.05 / harmonic);
        Assert.NotEqual(0, hottest);
    }

    [Theory]
    [InlineData("zipf:0")]
    [InlineData("zipf:-1")]
    [InlineData("zipf:")]
    [InlineData("pareto")]
    public void Bad_id_distributions_are_refused_by_name(string text)
    {
        var e = Assert.Throws<FormatException>(() => IdSampler.Parse(text, 100, 1));
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fixed_size_is_always_the_size()
    {
        SizeDistribution d = SizeDistribution.Parse("fixed:64", 4096);
        var rng = new SplitMix(1);
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Equal(64, d.Next(rng)));
    }

    [Theory]
    [InlineData("normal:64,16", 64.0, 16.0)]
    [InlineData("lognormal:64,32", 64.0, 32.0)]
    [InlineData("lognormal:200,300", 200.0, 300.0)]
    public void Normal_and_lognormal_sizes_have_the_asked_mean_and_sd(string spec, double mean, double sd)
    {
        SizeDistribution d = SizeDistribution.Parse(spec, 1 << 20);
        var rng = new SplitMix(2);
        const int n = 400_000;
        double sum = 0, sumSq = 0;
        int min = int.MaxValue;
        for (int i = 0; i < n; i++)
        {
            int v = d.Next(rng);
            min = Math.Min(min, v);
            sum += v;
            sumSq += (double)v * v;
        }
        double m = sum / n, s = Math.Sqrt(sumSq / n - m * m);
        Assert.True(min >= 1, $"a size below 1: {min}");
        // Rounding to integers and clamping at 1 shift the moments by well under these tolerances.
        Assert.InRange(m, mean * 0.98, mean * 1.02);
        Assert.InRange(s, sd * 0.93, sd * 1.07);
    }

    [Fact]
    public void Lognormal_sizes_are_skewed_right()
    {
        SizeDistribution d = SizeDistribution.Parse("lognormal:64,64", 1 << 20);
        var rng = new SplitMix(4);
        int[] v = [.. Enumerable.Range(0, 100_001).Select(_ => d.Next(rng)).Order()];
        // Median exp(mu) = mean / sqrt(1 + cv^2) = 64 / sqrt 2 = 45.3, well below the mean.
        Assert.InRange(v[50_000], 43, 48);
    }

    [Fact]
    public void Sizes_are_clamped_to_the_servers_limit()
    {
        SizeDistribution d = SizeDistribution.Parse("normal:5000,10", 4096);
        var rng = new SplitMix(1);
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Equal(4096, d.Next(rng)));
    }

    [Fact]
    public void File_sizes_replay_the_files_distribution()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bench-sizes-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(path, ["# production sample", "10", "10", "10", "", "40"]);
        try
        {
            SizeDistribution d = SizeDistribution.Parse("file:" + path, 4096);
            var rng = new SplitMix(8);
            int tens = 0, forties = 0;
            for (int i = 0; i < 40_000; i++)
            {
                int v = d.Next(rng);
                if (v == 10) tens++;
                else if (v == 40) forties++;
                else Assert.Fail($"size {v} is not in the file");
            }
            Assert.InRange(tens / 40_000.0, 0.74, 0.76);
            Assert.Equal(40_000, tens + forties);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Bad_size_file_lines_are_named()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bench-sizes-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(path, ["12", "twelve"]);
        try
        {
            var e = Assert.Throws<FormatException>(() => SizeDistribution.Parse("file:" + path, 4096));
            Assert.Contains("line 2", e.Message, StringComparison.Ordinal);
            Assert.Contains("twelve", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("fixed:0")]
    [InlineData("normal:64")]
    [InlineData("lognormal:0,5")]
    [InlineData("gamma:3,4")]
    [InlineData("64")]
    public void Bad_size_specs_are_refused(string text)
    {
        var e = Assert.Throws<FormatException>(() => SizeDistribution.Parse(text, 4096));
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }
}
