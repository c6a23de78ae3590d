using System.Collections.Concurrent;
using FASTER.core;
using Recsys.DenseCompute.Embeddings;

namespace Recsys.EmbeddingGrains.Storage;

/// <summary>
/// The durable home of one shard's rows: a FasterKV keyed by local slot whose values are encoded
/// rows (SpanByte). SpanByte rather than a fixed-size struct because the row width is a runtime
/// property of the table (D and the row format); SpanByte stores the row inline in the log
/// record behind a 4-byte length, so a read callback sees the row bytes where they lie.
/// </summary>
internal sealed class ShardStore : IDisposable
{
    private readonly FasterKV<long, SpanByte> _kv;
    private readonly IDevice _device;
    private readonly ConcurrentBag<RowSession> _sessions = [];
    private readonly RowFormat _format;
    private readonly int _dim;
    private bool _disposed;

    public ShardStore(string directory, StoreLayout layout, RowFormat format, int dim)
    {
        Directory = directory;
        Layout = layout;
        _format = format;
        _dim = dim;
        RowBytes = RowLayout.RowBytes(format, dim);
        System.IO.Directory.CreateDirectory(directory);
        // The managed device (what CreateLogDevice picks on Linux) by default opens reads with
        // O_DIRECT, so every miss would wait for the disk even when the OS has the page cached;
        // osReadBuffering lets the page cache serve them. recoverDevice: the device discovers the
        // segment files already on disk, so a store reopened after a restart reads its old records.
        _device = new ManagedLocalStorageDevice(Path.Combine(directory, "log", "rows.log"), preallocateFile: false, deleteOnClose: false,
            disableFileBuffering: false, capacity: Devices.CAPACITY_UNSPECIFIED, recoverDevice: true, osReadBuffering: true);
        var settings = new FasterKVSettings<long, SpanByte>(baseDir: null, deleteDirOnDispose: false)
        {
            IndexSize = layout.IndexBytes,
            LogDevice = _device,
            MemorySize = layout.LogMemoryBytes,
            PageSize = layout.PageBytes,
            SegmentSize = layout.SegmentBytes,
            CheckpointDir = Path.Combine(directory, "checkpoints"),
            RemoveOutdatedCheckpoints = true,
            // Our row cache decides what stays hot; copying disk reads to the log tail would grow the log.
            ReadCopyOptions = ReadCopyOptions.None,
            ReadCacheEnabled = false,
        };
        _kv = new FasterKV<long, SpanByte>(settings);
    }

    public string Directory { get; }
    public StoreLayout Layout { get; }
    public int RowBytes { get; }

    public RowSession RentSession()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_sessions.TryTake(out RowSession? session)) return session;
        var functions = new RowStoreFunctions(_format, _dim, RowBytes);
        return new RowSession(_kv.For(functions).NewSession<RowStoreFunctions>(), functions);
    }

    public void ReturnSession(RowSession session)
    {
        if (_disposed) session.Dispose();
        else _sessions.Add(session);
    }

    /// <summary>Starts a read that pools the row into input.Accumulator; Pending means the row is on disk.</summary>
    public static Status Read(RowSession session, long slot, ref RowReadInput input)
    {
        Empty output = default;
        return session.Session.Read(ref slot, ref input, ref output, Empty.Default, 0);
    }

    public static unsafe void Upsert(RowSession session, long slot, ReadOnlySpan<byte> row)
    {
        fixed (byte* p = row)
        {
            var value = SpanByte.FromPointer(p, row.Length);
            session.Session.Upsert(ref slot, ref value, Empty.Default, 0);
        }
    }

    /// <summary>
    /// Fold-over checkpoint: flushes the log to disk and writes the index, so everything upserted
    /// so far is durable. Cheap when little changed; later upserts of flushed rows append.
    /// </summary>
    public async Task CheckpointAsync()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        (bool success, Guid _) = await _kv.TakeFullCheckpointAsync(CheckpointType.FoldOver).ConfigureAwait(false);
        if (!success) throw new InvalidOperationException($"FASTER refused a checkpoint of {Directory} (another one in progress)");
    }

    public Task RecoverAsync() => _kv.RecoverAsync().AsTask();

    /// <summary>Visits every row in log order (later versions after earlier ones, so the last write wins).</summary>
    public unsafe void Scan(RowVisitor visitor)
    {
        using IFasterScanIterator<long, SpanByte> it = _kv.Log.Scan(_kv.Log.BeginAddress, _kv.Log.TailAddress);
        while (it.GetNext(out RecordInfo info))
        {
            if (info.Tombstone) continue;
            ref SpanByte value = ref it.GetValue();
            visitor(it.GetKey(), new ReadOnlySpan<byte>(value.ToPointer(), RowBytes));
        }
    }

    public long TailAddress => _kv.Log.TailAddress;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        while (_sessions.TryTake(out RowSession? s)) s.Dispose();
        _kv.Dispose();
        _device.Dispose();
    }
}

internal delegate void RowVisitor(long slot, ReadOnlySpan<byte> row);
