namespace Hive.Events.Log;

/// <summary>One event as read from a log: its sequence number and its protobuf (without seq).</summary>
public readonly record struct LogEntry(ulong Seq, ReadOnlyMemory<byte> Payload);

/// <summary>
/// A cursor over a sandbox's log (any number of readers, alongside the one writer). Delivers events
/// in sequence order, a batch only once its closing checkpoint record is visible — so a batch a
/// crash cut short is never shown — and never beyond the limit the caller passes (Sbxd's
/// durable watermark while it runs).
/// </summary>
public sealed class EventLogReader(string dir, ulong afterSeq) : IDisposable
{
    private const int ChunkBytes = 256 * 1024;
    private readonly Queue<LogEntry> _pending = new();
    private ulong _lastPending;
    private ulong _completeUpTo;
    private long _corruptAt = -1;
    private FileStream? _file;
    private ulong _segmentFirst;
    private long _offset;
    private byte[] _chunk = new byte[ChunkBytes];

    /// <summary>Sequence number of the last event delivered (or skipped as before the cursor).</summary>
    public ulong Position { get; private set; } = afterSeq;

    /// <summary>
    /// Appends up to <paramref name="max"/> events with seq ≤ <paramref name="limit"/> to
    /// <paramref name="into"/>; returns how many. 0 = nothing new (yet).
    /// </summary>
    public int Read(List<LogEntry> into, int max, ulong limit = ulong.MaxValue)
    {
        var count = 0;
        while (count < max)
        {
            // Deliver complete batches first.
            while (count < max && _pending.TryPeek(out var head) && head.Seq <= limit && head.Seq <= _completeUpTo)
            {
                var entry = _pending.Dequeue();
                into.Add(entry);
                Position = entry.Seq;
                count++;
            }

            if (count >= max || (_pending.TryPeek(out var next) && next.Seq > limit))
            {
                break;
            }

            if (!Fill())
            {
                break;
            }
        }

        return count;
    }

    /// <summary>Reads more records into the pending list. False when there is nothing more right now.</summary>
    private bool Fill()
    {
        if (_file is null && !OpenSegment())
        {
            return false;
        }

        if (_file!.Length < _offset)
        {
            Rescan(); // Sbxd restarted and cut off a batch a crash left incomplete (never delivered)
        }

        var got = RandomAccess.Read(_file.SafeFileHandle, _chunk, _offset);
        var used = 0;
        bool corrupt;
        while (LogFormat.TryRead(_chunk.AsSpan(used, got - used), out var seq, out var payloadOffset, out var length, out corrupt))
        {
            if (seq == 0)
            {
                _completeUpTo = Math.Max(_completeUpTo, _lastPending);
            }
            else if (seq > Position && seq > _lastPending)
            {
                _pending.Enqueue(new LogEntry(seq, _chunk.AsMemory(used + payloadOffset, length).ToArray()));
                _lastPending = seq;
            }

            used += payloadOffset + length;
        }

        _offset += used;
        if (used > 0)
        {
            return true;
        }

        if (corrupt && _corruptAt != _offset)
        {
            // Reading into a batch that replaced a cut-off one: start the segment over (once).
            _corruptAt = _offset;
            Rescan();
            return true;
        }

        if (got - used >= LogFormat.HeaderBytes && got == _chunk.Length)
        {
            // A record larger than the chunk: grow and retry.
            Array.Resize(ref _chunk, _chunk.Length * 2);
            return true;
        }

        // End of this segment for now: move on if a newer one exists (then this one is final).
        var segments = LogFormat.Segments(dir);
        var next = segments.FindIndex(s => s.FirstSeq > _segmentFirst);
        if (next < 0)
        {
            return false;
        }

        _file.Dispose();
        _file = null;
        _pending.Clear(); // an incomplete batch at a segment's end was cut short by a crash
        _lastPending = Position;
        return OpenSegment();
    }

    private void Rescan()
    {
        _pending.Clear();
        _lastPending = Position;
        _completeUpTo = Position;
        _offset = 0;
    }

    private bool OpenSegment()
    {
        var segments = LogFormat.Segments(dir);
        if (segments.Count == 0)
        {
            return false;
        }

        // The segment holding Position + 1, or the oldest one retention left.
        var index = segments.FindLastIndex(s => s.FirstSeq <= Position + 1);
        if (index < 0)
        {
            index = 0;
        }

        if (_segmentFirst != 0 && segments[index].FirstSeq <= _segmentFirst)
        {
            index = segments.FindIndex(s => s.FirstSeq > _segmentFirst);
            if (index < 0)
            {
                return false;
            }
        }

        try
        {
            _file = new FileStream(segments[index].Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        }
        catch (FileNotFoundException)
        {
            return false; // retention removed it between listing and opening; the next call lists again
        }

        _segmentFirst = segments[index].FirstSeq;
        _offset = 0;
        if (Position + 1 < _segmentFirst)
        {
            Position = _segmentFirst - 1; // older events were removed by retention
        }

        _completeUpTo = Position;
        _lastPending = Position;
        return true;
    }

    public void Dispose() => _file?.Dispose();
}
