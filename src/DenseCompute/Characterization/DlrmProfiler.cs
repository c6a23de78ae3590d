using System.Diagnostics;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;
using Recsys.DenseCompute.Quantized;

namespace Recsys.DenseCompute.Characterization;

/// <summary>
/// Times a loaded DLRM operator by operator on our own kernels: each Linear, each table's
/// embedding bag and the interaction, on the tensor layouts <see cref="DlrmModel.Score(RankBatch, Span{float})"/>
/// uses, in buffers allocated once per batch size (the production path rents them per call). Ids are drawn uniformly from each table afresh for every pass (untimed), so
/// rows come from DRAM as they would under traffic that does not fit in cache; every bag has the
/// table's declared pooling factor. Interleaved with each timed pass, the unbroken production path
/// (<see cref="DlrmModel.Score(RankBatch, Span{float})"/>) is timed on its own fresh ids, to show what the timers cost.
/// The model is not owned: the caller disposes it.
/// </summary>
public sealed class DlrmProfiler(DlrmModel model, string name) : IModelProfiler
{
    public string Name { get; } = name;

    public string Kind => "dlrm";

    public ParameterSummary Parameters => DlrmAccounting.Parameters(model.Spec);

    public IReadOnlyList<OperatorCost> Operators(int batch) => DlrmAccounting.Operators(model.Spec, batch);

    public long MaxLiveActivationBytes(int batch) => DlrmAccounting.MaxLiveActivationBytes(model.Spec, batch);

    public ForwardTiming Measure(int batch, MeasureSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be > 0");
        int previousThreads = model.Dense.MaxThreads;
        model.Dense.MaxThreads = settings.Threads;
        try
        {
            return new Run(model, batch, settings.Seed, settings.Clock).Measure(settings, Operators(batch));
        }
        finally
        {
            model.Dense.MaxThreads = previousThreads;
        }
    }

    /// <summary>
    /// Passes slower than this multiple of the p10 pass are left out of the means: on a shared machine
    /// they waited for a core, and whichever operator was running when the scheduler struck would
    /// take the blame for the wait.
    /// </summary>
    private const double CleanFactor = 1.5;

    /// <summary>The buffers of one batch size and the timed pass over them.</summary>
    private sealed class Run
    {
        private readonly DlrmModel _model;
        private readonly DlrmSpec _spec;
        private readonly int _batch;
        private readonly float[] _dense;
        private readonly SparseFeature[] _sparse;
        private readonly RankBatch _rankBatch;
        private readonly float[] _pooled;
        private readonly int[] _pooledStart;
        private readonly float[] _bottomA, _bottomB, _topA, _topB, _z, _scores;
        private readonly ProfileClock _clock;
        private ulong _state;

        public Run(DlrmModel model, int batch, ulong seed, ProfileClock clock)
        {
            _clock = clock;
            _model = model;
            _spec = model.Spec;
            _batch = batch;
            _state = seed;
            _dense = new float[batch * _spec.DenseFeatures];
            for (int i = 0; i < _dense.Length; i++) _dense[i] = (float)(Next() % 2000) / 1000f;
            _sparse = new SparseFeature[_spec.Tables.Length];
            _pooledStart = new int[_spec.Tables.Length + 1];
            for (int t = 0; t < _sparse.Length; t++)
            {
                int lookups = DlrmAccounting.LookupsPerBag(_spec.Tables[t]);
                var offsets = new int[batch + 1];
                for (int b = 0; b <= batch; b++) offsets[b] = b * lookups;
                _sparse[t] = new SparseFeature(new long[batch * lookups], offsets, null);
                _pooledStart[t + 1] = _pooledStart[t] + batch * _spec.Tables[t].Dim;
            }
            _rankBatch = new RankBatch(batch, _dense, _sparse);
            _pooled = new float[Math.Max(1, _pooledStart[^1])];
            int bottomWidest = _spec.BottomMlp.Length == 0 ? _spec.DenseFeatures : _spec.BottomMlp.Max();
            _bottomA = new float[batch * bottomWidest];
            _bottomB = new float[batch * bottomWidest];
            _topA = new float[batch * _spec.TopMlp.Max()];
            _topB = new float[batch * _spec.TopMlp.Max()];
            _z = new float[batch * _spec.InteractionOutput];
            _scores = new float[batch * _spec.Events];
        }

        public ForwardTiming Measure(MeasureSettings settings, IReadOnlyList<OperatorCost> ops)
        {
            int opCount = ops.Count;
            var opTicks = new long[settings.MaxIterations * opCount];
            var totals = new long[settings.MaxIterations];
            var unbroken = new long[settings.MaxIterations];
            for (int w = 0; w < settings.Warmup; w++)
            {
                FreshIds();
                Timed(new long[opCount]);
                FreshIds();
                _model.Score(_rankBatch, _scores);
            }
            long started = Stopwatch.GetTimestamp();
            int n = 0;
            while (n < settings.MaxIterations && (n < settings.MinIterations || Stopwatch.GetElapsedTime(started).TotalSeconds < settings.BudgetSeconds))
            {
                FreshIds();
                totals[n] = Timed(opTicks.AsSpan(n * opCount, opCount));
                FreshIds();
                long t0 = Now();
                _model.Score(_rankBatch, _scores);
                unbroken[n] = Now() - t0;
                n++;
            }
            return Summarize(ops, opTicks, totals, unbroken, n);
        }

        private ForwardTiming Summarize(IReadOnlyList<OperatorCost> ops, long[] opTicks, long[] totals, long[] unbroken, int n)
        {
            double nsPerTick = ProfileClocks.NanosecondsPerTick(_clock);
            double[] total = [.. totals.Take(n).Select(t => t * nsPerTick)];
            double[] sortedTotal = [.. total.Order()];
            double cut = Math.Min(Percentile.Of(sortedTotal, 95), CleanFactor * Percentile.Of(sortedTotal, 10));
            int[] kept = [.. Enumerable.Range(0, n).Where(i => total[i] <= cut)];
            var timings = new OperatorTiming[ops.Count];
            var column = new double[n];
            for (int k = 0; k < ops.Count; k++)
            {
                for (int i = 0; i < n; i++) column[i] = opTicks[i * ops.Count + k] * nsPerTick;
                double mean = kept.Average(i => column[i]);
                Array.Sort(column);
                timings[k] = new OperatorTiming(ops[k].Name, Percentile.Of(column, 50), mean);
            }
            double[] sortedUnbroken = [.. unbroken.Take(n).Select(t => t * nsPerTick).Order()];
            return new ForwardTiming(_batch, n, Percentile.Of(sortedTotal, 50), Percentile.Of(sortedTotal, 99),
                kept.Average(i => total[i]), kept.Length, timings, Percentile.Of(sortedUnbroken, 50), _clock);
        }

        /// <summary>One forward pass, each operator between its own pair of timestamps; returns the whole pass's ticks.</summary>
        private long Timed(Span<long> ticks)
        {
            DlrmDense dense = _model.Dense;
            int batch = _batch, threads = dense.MaxThreads, k = 0;
            long start = Now(), t0;
            ReadOnlySpan<float> x = _dense;
            IReadOnlyList<IDenseLayer> bottom = dense.BottomLayers;
            for (int i = 0; i < bottom.Count; i++)
            {
                Span<float> y = (i % 2 == 0 ? _bottomA : _bottomB).AsSpan(0, batch * bottom[i].OutFeatures);
                t0 = Now();
                bottom[i].Forward(x, batch, y, threads);
                ticks[k++] = Now() - t0;
                x = y;
            }
            if (bottom.Count == 0)
            {
                t0 = Now();
                dense.Bottom(_dense, batch, _bottomA);
                ticks[k++] = Now() - t0;
                x = _bottomA.AsSpan(0, batch * _spec.DenseFeatures);
            }
            IReadOnlyList<EmbeddingTable> tables = _model.Tables;
            for (int t = 0; t < tables.Count; t++)
            {
                SparseFeature f = _sparse[t];
                Span<float> block = _pooled.AsSpan(_pooledStart[t], _pooledStart[t + 1] - _pooledStart[t]);
                t0 = Now();
                EmbeddingBag.Pool(tables[t], f.Ids, f.Offsets, default, _spec.Tables[t].Pooling, block);
                ticks[k++] = Now() - t0;
            }
            t0 = Now();
            dense.Interaction.Forward(x, _pooled.AsSpan(0, _pooledStart[^1]), batch, _z);
            ticks[k++] = Now() - t0;
            x = _z;
            IReadOnlyList<IDenseLayer> top = dense.TopLayers;
            for (int i = 0; i < top.Count; i++)
            {
                Span<float> y = i == top.Count - 1 ? _scores : (i % 2 == 0 ? _topA : _topB).AsSpan(0, batch * top[i].OutFeatures);
                t0 = Now();
                top[i].Forward(x, batch, y, threads);
                ticks[k++] = Now() - t0;
                x = y;
            }
            return Now() - start;
        }

        private long Now() => ProfileClocks.Now(_clock);

        private void FreshIds()
        {
            for (int t = 0; t < _sparse.Length; t++)
            {
                ulong rows = (ulong)_spec.Tables[t].Rows;
                long[] ids = _sparse[t].Ids;
                // Lemire's multiply-high maps a 64-bit draw onto [0, rows) without a division.
                for (int j = 0; j < ids.Length; j++) ids[j] = (long)Math.BigMul(Next(), rows, out _);
            }
        }

        private ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
