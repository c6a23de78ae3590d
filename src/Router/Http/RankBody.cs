using System.Buffers;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.Router.Http;

/// <summary>
/// Collects a ranking body read from any wire form (MessagePack, KServe v2 tensors, context and
/// candidates) and validates it exactly as RankRequestJson validates JSON: field-named errors,
/// 400 for shapes, 413 past the max batch, 422 for ids outside a table.
/// </summary>
internal sealed class RankBody
{
    private readonly DlrmSpec _spec;
    private readonly int _maxBatch;
    private readonly Growing<long>?[] _ids;
    private readonly Growing<int>?[] _offsets;
    private readonly Growing<float>?[] _weights;
    private readonly Growing<int>?[] _weightOffsets;
    private Growing<float>? _dense;
    private int _denseRows;

    public RankBody(DlrmSpec spec, int maxBatch)
    {
        _spec = spec;
        _maxBatch = maxBatch;
        int n = spec.Tables.Length;
        _ids = new Growing<long>?[n];
        _offsets = new Growing<int>?[n];
        _weights = new Growing<float>?[n];
        _weightOffsets = new Growing<int>?[n];
    }

    public DlrmSpec Spec => _spec;

    public int TableIndex(string section, string name)
    {
        int t = _spec.TableIndex(name);
        return t >= 0 ? t : throw new InvalidRequestException($"{section}.{name}", $"unknown table (the model has {string.Join(", ", _spec.Tables.Select(s => s.Name))})");
    }

    public void BeginDense()
    {
        if (_dense is not null) throw new InvalidRequestException("dense", "appears twice");
        _dense = new Growing<float>(_spec.DenseFeatures * 16);
    }

    /// <summary>Adds one sample's dense row; the span is checked for width and finiteness.</summary>
    public void AddDenseRow(ReadOnlySpan<float> row, string field)
    {
        CheckBatch(_denseRows, "dense");
        if (row.Length != _spec.DenseFeatures) throw new InvalidRequestException(field, $"has {row.Length} values, the model has {_spec.DenseFeatures} dense features");
        for (int i = 0; i < row.Length; i++)
        {
            // The field name is formatted only on failure: this loop runs once per dense value.
            if (!float.IsFinite(row[i])) ThrowNotFinite(row[i], $"{field}[{i}]");
        }
        _dense!.AddRange(row);
        _denseRows++;
    }

    public void BeginTable(int t, string field)
    {
        if (_ids[t] is not null) throw new InvalidRequestException(field, "appears twice");
        _ids[t] = new Growing<long>(256);
        _offsets[t] = new Growing<int>(64);
        _offsets[t]!.Add(0);
    }

    public void AddId(int t, long id, string field, int bag, int position)
    {
        long rows = _spec.Tables[t].Rows;
        if ((ulong)id >= (ulong)rows) throw new InvalidRequestException($"{field}[{bag}][{position}]", $"id {id} is outside the table's rows [0, {rows})", 422);
        _ids[t]!.Add(id);
    }

    public void EndBag(int t, string field)
    {
        CheckBatch(_offsets[t]!.Count - 1, field);
        _offsets[t]!.Add(_ids[t]!.Count);
    }

    public void BeginWeights(int t, string field)
    {
        if (_weights[t] is not null) throw new InvalidRequestException(field, "appears twice");
        if (_spec.Tables[t].Pooling != Pooling.Sum) throw new InvalidRequestException(field, "per-sample weights need sum pooling (as PyTorch's EmbeddingBag), this table pools by mean");
        _weights[t] = new Growing<float>(256);
        _weightOffsets[t] = new Growing<int>(64);
        _weightOffsets[t]!.Add(0);
    }

    public void AddWeight(int t, float w, string field, int bag, int position)
    {
        if (!float.IsFinite(w)) ThrowNotFinite(w, $"{field}[{bag}][{position}]");
        _weights[t]!.Add(w);
    }

    public void EndWeightBag(int t, string field)
    {
        CheckBatch(_weightOffsets[t]!.Count - 1, field);
        _weightOffsets[t]!.Add(_weights[t]!.Count);
    }

    public RankBatch Assemble()
    {
        if (_dense is null && _spec.DenseFeatures > 0) throw new InvalidRequestException("dense", "missing");
        int batch = _dense is null ? -1 : _denseRows;
        string batchFrom = _dense is null ? "" : "dense";
        var sparse = new SparseFeature[_spec.Tables.Length];
        for (int t = 0; t < sparse.Length; t++)
        {
            string name = _spec.Tables[t].Name;
            Growing<int> offsets = _offsets[t] ?? throw new InvalidRequestException($"sparse.{name}", "missing (every table of the model needs a list of bags, empty bags are allowed)");
            int bags = offsets.Count - 1;
            if (batch < 0)
            {
                batch = bags;
                batchFrom = $"sparse.{name}";
            }
            else if (bags != batch)
            {
                throw new InvalidRequestException($"sparse.{name}", $"has {bags} bags but {batchFrom} has {batch} samples");
            }
            float[]? weights = null;
            if (_weightOffsets[t] is { } wo)
            {
                if (wo.Count - 1 != bags) throw new InvalidRequestException($"weights.{name}", $"has {wo.Count - 1} bags but sparse.{name} has {bags}");
                for (int b = 0; b < bags; b++)
                {
                    int ids = offsets[b + 1] - offsets[b], ws = wo[b + 1] - wo[b];
                    if (ids != ws) throw new InvalidRequestException($"weights.{name}[{b}]", $"has {ws} weights for {ids} ids");
                }
                weights = _weights[t]!.ToArray();
            }
            sparse[t] = new SparseFeature(_ids[t]!.ToArray(), offsets.ToArray(), weights);
        }
        float[] dense = _dense?.ToArray() ?? new float[batch * _spec.DenseFeatures];
        // Only a body that parsed whole gives its buffers back; a rejected one leaves them to the GC.
        for (int t = 0; t < sparse.Length; t++)
        {
            _ids[t]?.Return();
            _offsets[t]?.Return();
            _weights[t]?.Return();
            _weightOffsets[t]?.Return();
        }
        _dense?.Return();
        if (batch <= 0) throw new InvalidRequestException(batchFrom.Length > 0 ? batchFrom : "dense", "the batch is empty (send at least one sample)");
        return new RankBatch(batch, dense, sparse);
    }

    private void CheckBatch(int index, string field)
    {
        if (index >= _maxBatch) throw new InvalidRequestException(field, $"more than {_maxBatch} samples (the server's max batch)", 413);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void ThrowNotFinite(float f, string field) => throw new InvalidRequestException(field, $"{f} is not a finite float32");

    /// <summary>
    /// An append-only list in ArrayPool arrays: the exact-size copy taken at the end is the only
    /// allocation. List&lt;T&gt; allocated about twice the final size while doubling, then copied once
    /// more (ids are most of a request's bytes: 82k per rmc1 batch of 128).
    /// </summary>
    private sealed class Growing<T>(int capacity)
        where T : struct
    {
        private T[] _items = ArrayPool<T>.Shared.Rent(capacity);

        public int Count { get; private set; }

        public T this[int index] => _items[index];

        public void Add(T item)
        {
            if (Count == _items.Length) Grow(Count + 1);
            _items[Count++] = item;
        }

        public void AddRange(ReadOnlySpan<T> items)
        {
            if (Count + items.Length > _items.Length) Grow(Count + items.Length);
            items.CopyTo(_items.AsSpan(Count));
            Count += items.Length;
        }

        public T[] ToArray() => _items.AsSpan(0, Count).ToArray();

        public void Return()
        {
            ArrayPool<T>.Shared.Return(_items);
            _items = [];
            Count = 0;
        }

        private void Grow(int needed)
        {
            T[] larger = ArrayPool<T>.Shared.Rent(Math.Max(needed, _items.Length * 2));
            _items.AsSpan(0, Count).CopyTo(larger);
            ArrayPool<T>.Shared.Return(_items);
            _items = larger;
        }
    }
}
