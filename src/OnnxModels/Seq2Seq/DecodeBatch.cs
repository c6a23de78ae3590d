using System.Collections.Concurrent;
using System.Diagnostics;

namespace Recsys.OnnxModels.Seq2Seq;

/// <summary>
/// Continuous batching of translation requests. Each <see cref="RunStep"/> encodes the requests
/// that arrived since the last step (one padded encoder batch), then runs the decoder once over
/// every live hypothesis of every request, advances each request's beam, moves each surviving
/// hypothesis' state to its new row and completes the requests that are done. A short request
/// leaves as soon as it finishes and a new one joins at the next step, so a long request never
/// holds short ones until it ends.
/// </summary>
/// <remarks>
/// <see cref="Submit"/> is thread-safe; <see cref="RunStep"/> must be called by one thread at a
/// time (the scheduler's driver). Rows are grouped by request in admission order; the encoder
/// outputs and mask for a step are rebuilt only when that grouping changes.
/// </remarks>
public sealed class DecodeBatch
{
    private readonly Seq2SeqGraphs _graphs;
    private readonly Seq2SeqSpec _spec;
    private readonly ConcurrentQueue<DecodeRequest> _arrivals = new();
    private readonly List<DecodeRequest> _live = [];
    private readonly List<(DecodeRequest Request, int Rows)> _layout = [];
    private int _queued;
    private int _layoutWidth = -1;

    private readonly long[] _prev;
    private float[] _state, _nextState;
    private readonly float[] _logProbs, _newState;
    private readonly int[] _parents;
    private float[] _enc = [];
    private float[] _mask = [];

    public DecodeBatch(Seq2SeqGraphs graphs, Seq2SeqSpec spec)
    {
        _graphs = graphs;
        _spec = spec;
        int rows = spec.MaxBatchRows;
        _prev = new long[rows];
        _state = new float[rows * graphs.StateWidth];
        _nextState = new float[rows * graphs.StateWidth];
        _newState = new float[rows * graphs.StateWidth];
        _logProbs = new float[rows * graphs.Vocabulary];
        _parents = new int[spec.MaxBeam];
    }

    /// <summary>True while some request is live or waiting to join.</summary>
    public bool HasWork => _live.Count > 0 || !_arrivals.IsEmpty;

    public int LiveRequests => _live.Count;

    /// <summary>Rows of the last decoder step (for tests and metrics).</summary>
    public int LastStepRows { get; private set; }

    /// <summary>The earliest deadline (Stopwatch timestamp) among live and waiting requests; long.MaxValue when none.</summary>
    public long EarliestDeadline
    {
        get
        {
            long earliest = long.MaxValue;
            foreach (DecodeRequest r in _live) earliest = Math.Min(earliest, r.Deadline);
            foreach (DecodeRequest r in _arrivals) earliest = Math.Min(earliest, r.Deadline);
            return earliest;
        }
    }

    /// <summary>Queues a checked source (ids in the vocabulary, length within the model's limit) to join the next step.</summary>
    /// <param name="deadline">Stopwatch timestamp; the scheduler orders steps by the earliest one.</param>
    /// <exception cref="DecodeQueueFullException">More requests wait than model.json's max_queued.</exception>
    public Task<DecodeResult> Submit(int[] source, DecodeOptions options, long deadline, CancellationToken cancel = default)
    {
        if (Interlocked.Increment(ref _queued) > _spec.MaxQueued)
        {
            Interlocked.Decrement(ref _queued);
            throw new DecodeQueueFullException($"{_spec.MaxQueued} translation requests are already waiting to join the decode batch");
        }
        var request = new DecodeRequest(source, new BeamSearch(options, _spec.StartId, _spec.EndId), deadline, cancel);
        _arrivals.Enqueue(request);
        return request.Completion.Task;
    }

    /// <summary>Admits waiting requests that fit, runs one decoder step, completes finished requests. Returns true while work remains.</summary>
    public bool RunStep()
    {
        try
        {
            DropCancelled();
            Admit();
            if (_live.Count > 0) Step();
        }
        catch (Exception e)
        {
            // A failed step leaves every beam and the state rows inconsistent: fail the whole batch.
            foreach (DecodeRequest r in _live) r.Completion.TrySetException(e);
            _live.Clear();
            _layout.Clear();
            _layoutWidth = -1;
        }
        return HasWork;
    }

    /// <summary>Fails every waiting and live request (shutdown).</summary>
    public void Abandon(Exception reason)
    {
        while (_arrivals.TryDequeue(out DecodeRequest? r))
        {
            Interlocked.Decrement(ref _queued);
            r.Completion.TrySetException(reason);
        }
        foreach (DecodeRequest r in _live) r.Completion.TrySetException(reason);
        _live.Clear();
        _layout.Clear();
    }

    private void DropCancelled()
    {
        if (!_live.Any(r => r.Cancel.IsCancellationRequested)) return;
        int d = _graphs.StateWidth, from = 0, to = 0;
        var kept = new List<DecodeRequest>(_live.Count);
        foreach (DecodeRequest r in _live)
        {
            int rows = r.Beam.LiveCount;
            if (r.Cancel.IsCancellationRequested)
            {
                r.Completion.TrySetCanceled(r.Cancel);
            }
            else
            {
                if (from != to) _state.AsSpan(from * d, rows * d).CopyTo(_state.AsSpan(to * d));
                to += rows;
                kept.Add(r);
            }
            from += rows;
        }
        _live.Clear();
        _live.AddRange(kept);
    }

    private void Admit()
    {
        int rows = _live.Sum(r => r.Beam.LiveCount);
        int reserved = _live.Sum(r => r.Options.Beam);
        var joining = new List<DecodeRequest>();
        while (_arrivals.TryPeek(out DecodeRequest? next))
        {
            if (next.Cancel.IsCancellationRequested)
            {
                _arrivals.TryDequeue(out _);
                Interlocked.Decrement(ref _queued);
                next.Completion.TrySetCanceled(next.Cancel);
                continue;
            }
            // Reserve the full beam so a request's rows never outgrow the step buffers.
            if (reserved + next.Options.Beam > _spec.MaxBatchRows) break;
            _arrivals.TryDequeue(out _);
            Interlocked.Decrement(ref _queued);
            reserved += next.Options.Beam;
            joining.Add(next);
        }
        if (joining.Count == 0) return;

        int width = joining.Max(r => r.Source.Length);
        var ids = new long[joining.Count * width];
        var lengths = new long[joining.Count];
        Array.Fill(ids, _spec.PadId);
        for (int i = 0; i < joining.Count; i++)
        {
            int[] s = joining[i].Source;
            for (int t = 0; t < s.Length; t++) ids[i * width + t] = s[t];
            lengths[i] = s.Length;
        }
        (float[] encOut, float[] state) = _graphs.Encode(ids, lengths, joining.Count, width);
        int h = _graphs.Hidden, d = _graphs.StateWidth;
        for (int i = 0; i < joining.Count; i++)
        {
            DecodeRequest r = joining[i];
            r.EncOut = encOut.AsSpan(i * width * h, r.Source.Length * h).ToArray();
            state.AsSpan(i * d, d).CopyTo(_state.AsSpan(rows * d));
            rows++;
            _live.Add(r);
        }
    }

    private void Step()
    {
        int h = _graphs.Hidden, d = _graphs.StateWidth, v = _graphs.Vocabulary;
        int rows = 0, width = 0;
        foreach (DecodeRequest r in _live)
        {
            for (int i = 0; i < r.Beam.LiveCount; i++) _prev[rows + i] = r.Beam.PreviousToken(i);
            rows += r.Beam.LiveCount;
            width = Math.Max(width, r.Source.Length);
        }
        if (!LayoutUnchanged(width)) BuildEncoderRows(rows, width);
        LastStepRows = rows;

        _graphs.Step(rows, width, _prev, _state, _enc, _mask, _logProbs, _newState);

        int row = 0, next = 0;
        var still = new List<DecodeRequest>(_live.Count);
        foreach (DecodeRequest r in _live)
        {
            int count = r.Beam.LiveCount;
            int kept = r.Beam.Advance(_logProbs.AsSpan(row * v, count * v), v, _parents);
            for (int i = 0; i < kept; i++) _newState.AsSpan((row + _parents[i]) * d, d).CopyTo(_nextState.AsSpan((next + i) * d));
            next += kept;
            row += count;
            if (r.Beam.Done) r.Completion.TrySetResult(r.Beam.Result());
            else still.Add(r);
        }
        _live.Clear();
        _live.AddRange(still);
        (_state, _nextState) = (_nextState, _state);
    }

    private bool LayoutUnchanged(int width)
    {
        if (width != _layoutWidth || _layout.Count != _live.Count) return false;
        for (int i = 0; i < _live.Count; i++)
        {
            if (!ReferenceEquals(_layout[i].Request, _live[i]) || _layout[i].Rows != _live[i].Beam.LiveCount) return false;
        }
        return true;
    }

    /// <summary>Every row gets its request's encoder outputs padded to the step's width, and the matching mask.</summary>
    private void BuildEncoderRows(int rows, int width)
    {
        int h = _graphs.Hidden;
        int need = _spec.MaxBatchRows * width;
        if (_mask.Length < need)
        {
            _mask = new float[need];
            _enc = new float[need * h];
        }
        _layout.Clear();
        int row = 0;
        foreach (DecodeRequest r in _live)
        {
            int len = r.Source.Length;
            for (int i = 0; i < r.Beam.LiveCount; i++, row++)
            {
                Span<float> enc = _enc.AsSpan(row * width * h, width * h);
                r.EncOut.CopyTo(enc);
                enc[(len * h)..].Clear();
                Span<float> mask = _mask.AsSpan(row * width, width);
                mask[..len].Fill(1f);
                mask[len..].Clear();
            }
            _layout.Add((r, r.Beam.LiveCount));
        }
        Debug.Assert(row == rows);
        _layoutWidth = width;
    }

    private sealed class DecodeRequest(int[] source, BeamSearch beam, long deadline, CancellationToken cancel)
    {
        public int[] Source { get; } = source;
        public BeamSearch Beam { get; } = beam;
        public DecodeOptions Options => Beam.Options;
        public long Deadline { get; } = deadline;
        public CancellationToken Cancel { get; } = cancel;
        public float[] EncOut { get; set; } = [];
        public TaskCompletionSource<DecodeResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>The decode batch's waiting line is full; the caller answers 429.</summary>
public sealed class DecodeQueueFullException(string message) : Exception(message);
