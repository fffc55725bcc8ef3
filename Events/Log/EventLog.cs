using Google.Protobuf;
using Hive.Protos.V1;

namespace Hive.Events.Log;

/// <summary>
/// Retention of one sandbox's log. Whole segments go, oldest first; the newest always stays. A live
/// sandbox's own history is never removed (see <see cref="EventLog.ApplyRetention"/>): the limits
/// apply to destroyed sandboxes' logs and to earlier lives of a name created again.
/// </summary>
public sealed record EventLogOptions
{
    /// <summary>A segment is closed once it reaches this size. Default 16 MiB.</summary>
    public long SegmentBytes { get; init; } = 16L * 1024 * 1024;

    /// <summary>Older segments are deleted while the log is larger. Default 1 GiB; 0 = unlimited.</summary>
    public long MaxBytes { get; init; } = 1024L * 1024 * 1024;

    /// <summary>Segments last written longer ago are deleted. Default 30 days; zero = forever.</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(30);
}

/// <summary>
/// The writer of a sandbox's append-only event log (Sbxd only; one writer per log). Group commit:
/// <see cref="Append"/> writes a batch and its spool checkpoint in one <c>write(2)</c>, then fsyncs.
/// A batch ends with its checkpoint record; at open, anything after the last checkpoint (a batch
/// cut short by a crash) is truncated — its events are still in the spools and are read again.
/// </summary>
public sealed class EventLog : IDisposable
{
    private readonly string _dir;
    private readonly EventLogOptions _options;
    private FileStream _segment;
    private byte[] _buffer = new byte[64 * 1024];

    private EventLog(string dir, EventLogOptions options, FileStream segment, ulong lastSeq, Dictionary<string, ulong> checkpoint)
    {
        _dir = dir;
        _options = options;
        _segment = segment;
        LastSeq = lastSeq;
        Checkpoint = checkpoint;
    }

    /// <summary>Sequence number of the last durable event (0 for an empty log).</summary>
    public ulong LastSeq { get; private set; }

    /// <summary>Spool positions up to which every event is in the log.</summary>
    public Dictionary<string, ulong> Checkpoint { get; }

    /// <summary>Segments this writer started since it was opened (retention is worth a look after each).</summary>
    public int SegmentsStarted { get; private set; }

    /// <summary>Bytes this writer appended to the log (records, checkpoints) since it was opened.</summary>
    public long WrittenBytes { get; private set; }

    /// <summary>Size of the segments starting at or after <paramref name="firstSeq"/> (a segment boundary).</summary>
    public long BytesFrom(ulong firstSeq) =>
        LogFormat.Segments(_dir).Where(s => s.FirstSeq >= firstSeq).Sum(s => new FileInfo(s.Path).Length);

    public static EventLog Open(string dir, EventLogOptions? options = null)
    {
        options ??= new EventLogOptions();
        Directory.CreateDirectory(dir);
        var segments = LogFormat.Segments(dir);
        while (segments.Count > 0)
        {
            var (first, path) = segments[^1];
            var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.ReadWrite, Share = FileShare.Read | FileShare.Delete, BufferSize = 0 });
            var (end, lastSeq, checkpoint) = Recover(stream, first);
            if (checkpoint is null)
            {
                // Created but never completed its first batch: it holds nothing durable.
                stream.Dispose();
                File.Delete(path);
                segments.RemoveAt(segments.Count - 1);
                continue;
            }

            if (end < stream.Length)
            {
                stream.SetLength(end);
                stream.Flush(flushToDisk: true);
            }

            stream.Position = end;
            return new EventLog(dir, options, stream, lastSeq, checkpoint);
        }

        var log = new EventLog(dir, options, CreateSegment(dir, 1), 0, new Dictionary<string, ulong>(StringComparer.Ordinal));
        log.Write([], log.Checkpoint);
        return log;
    }

    /// <summary>
    /// Makes <paramref name="payloads"/> (events without seq) durable as the next sequence numbers,
    /// together with the spool positions they were read up to. Returns the last seq assigned.
    /// <paramref name="newSegment"/> starts a new segment first (unless the current one holds no
    /// event yet), so that what follows can be told apart by segment (a sandbox's new life).
    /// </summary>
    public ulong Append(IReadOnlyList<ReadOnlyMemory<byte>> payloads, IReadOnlyDictionary<string, ulong> positions, bool newSegment = false)
    {
        if (_segment.Length >= _options.SegmentBytes || (newSegment && LastSeq >= SegmentFirstSeq()))
        {
            // A new segment starts with the checkpoint so far, so the last segment always holds one.
            var next = CreateSegment(_dir, LastSeq + 1);
            _segment.Dispose();
            _segment = next;
            SegmentsStarted++;
            Write([], Checkpoint);
        }

        Write(payloads, positions);
        foreach (var (source, position) in positions)
        {
            Checkpoint[source] = position;
        }

        return LastSeq;
    }

    /// <summary>
    /// Deletes old segments beyond the size or age limit, but none holding an event at or after
    /// <paramref name="keepFrom"/> (the live sandbox's own history). Returns how many went.
    /// </summary>
    public int ApplyRetention(DateTimeOffset now, ulong keepFrom = ulong.MaxValue)
    {
        var segments = LogFormat.Segments(_dir);
        var total = segments.Sum(s => new FileInfo(s.Path).Length);
        var deleted = 0;
        for (var i = 0; i < segments.Count - 1; i++)
        {
            var path = segments[i].Path;
            var info = new FileInfo(path);
            var tooBig = _options.MaxBytes > 0 && total > _options.MaxBytes;
            var tooOld = _options.MaxAge > TimeSpan.Zero && info.LastWriteTimeUtc < now.UtcDateTime - _options.MaxAge;
            if ((!tooBig && !tooOld) || segments[i + 1].FirstSeq > keepFrom)
            {
                break; // the next segment starts after keepFrom: this one holds kept events
            }

            total -= info.Length;
            File.Delete(path);
            deleted++;
        }

        return deleted;
    }

    private void Write(IReadOnlyList<ReadOnlyMemory<byte>> payloads, IReadOnlyDictionary<string, ulong> positions)
    {
        var checkpoint = new SpoolCheckpoint();
        checkpoint.Positions.Add(Checkpoint);
        foreach (var (source, position) in positions)
        {
            checkpoint.Positions[source] = position;
        }

        var metaBytes = checkpoint.CalculateSize();
        var size = payloads.Sum(p => LogFormat.HeaderBytes + p.Length) + LogFormat.HeaderBytes + metaBytes;
        if (_buffer.Length < size)
        {
            _buffer = new byte[Math.Max(size, _buffer.Length * 2)];
        }

        var at = 0;
        var seq = LastSeq;
        foreach (var payload in payloads)
        {
            payload.Span.CopyTo(_buffer.AsSpan(at + LogFormat.HeaderBytes));
            LogFormat.WriteHeader(_buffer.AsSpan(at), ++seq, _buffer.AsSpan(at + LogFormat.HeaderBytes, payload.Length));
            at += LogFormat.HeaderBytes + payload.Length;
        }

        checkpoint.WriteTo(_buffer.AsSpan(at + LogFormat.HeaderBytes, metaBytes));
        LogFormat.WriteHeader(_buffer.AsSpan(at), 0, _buffer.AsSpan(at + LogFormat.HeaderBytes, metaBytes));
        at += LogFormat.HeaderBytes + metaBytes;

        var start = _segment.Position;
        try
        {
            _segment.Write(_buffer, 0, at);
            _segment.Flush(flushToDisk: true);
        }
        catch (IOException)
        {
            // Nothing of this batch counts: cut it off so the next batch continues a clean log.
            try
            {
                _segment.SetLength(start);
                _segment.Position = start;
            }
            catch (IOException)
            {
                // The next open truncates after the last checkpoint anyway.
            }

            throw;
        }

        LastSeq = seq;
        WrittenBytes += at;
    }

    /// <summary>First sequence number of the current segment (from its name).</summary>
    private ulong SegmentFirstSeq() =>
        ulong.Parse(Path.GetFileNameWithoutExtension(_segment.Name), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture);

    private static FileStream CreateSegment(string dir, ulong firstSeq)
    {
        var stream = new FileStream(Path.Combine(dir, LogFormat.SegmentName(firstSeq)), new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.ReadWrite,
            Share = FileShare.Read | FileShare.Delete,
            BufferSize = 0,
        });
        SyncDirectory(dir);
        return stream;
    }

    /// <summary>fsync of the directory, so a new segment's name survives a host crash.</summary>
    private static void SyncDirectory(string dir)
    {
        var fd = Interop.Libc.openat(Interop.Libc.AT_FDCWD, dir, Interop.Libc.O_RDONLY | Interop.Libc.O_DIRECTORY | Interop.Libc.O_CLOEXEC, 0);
        if (fd >= 0)
        {
            Interop.Libc.fsync(fd);
            Interop.Libc.close(fd);
        }
    }

    /// <summary>Scans a segment: end of its last complete batch, the last seq in it, its last checkpoint.</summary>
    private static (long End, ulong LastSeq, Dictionary<string, ulong>? Checkpoint) Recover(FileStream stream, ulong firstSeq)
    {
        var data = new byte[stream.Length];
        var got = RandomAccess.Read(stream.SafeFileHandle, data, 0);
        long at = 0, end = 0;
        ulong lastSeq = firstSeq - 1, batchSeq = firstSeq - 1;
        Dictionary<string, ulong>? checkpoint = null;
        while (LogFormat.TryRead(data.AsSpan((int)at, got - (int)at), out var seq, out var offset, out var length, out _))
        {
            if (seq == 0)
            {
                var meta = SpoolCheckpoint.Parser.ParseFrom(data, (int)at + offset, length);
                checkpoint = new Dictionary<string, ulong>(meta.Positions, StringComparer.Ordinal);
                lastSeq = batchSeq;
                end = at + offset + length;
            }
            else
            {
                batchSeq = seq;
            }

            at += offset + length;
        }

        return (end, lastSeq, checkpoint);
    }

    public void Dispose() => _segment.Dispose();
}

/// <summary>Retention for logs no Sbxd writes any more (destroyed sandboxes), run by the Controller.</summary>
public static class OrphanLogRetention
{
    /// <summary>Applies size and age limits; deletes the whole log once its newest segment is too old. True if the log is gone.</summary>
    public static bool Apply(string dir, EventLogOptions options, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(options);
        var segments = LogFormat.Segments(dir);
        if (segments.Count == 0)
        {
            return false;
        }

        var cutoff = now.UtcDateTime - options.MaxAge;
        if (options.MaxAge > TimeSpan.Zero && File.GetLastWriteTimeUtc(segments[^1].Path) < cutoff)
        {
            Directory.Delete(dir, recursive: true);
            return true;
        }

        var total = segments.Sum(s => new FileInfo(s.Path).Length);
        foreach (var (_, path) in segments.Take(segments.Count - 1))
        {
            var info = new FileInfo(path);
            if (!(options.MaxBytes > 0 && total > options.MaxBytes) && !(options.MaxAge > TimeSpan.Zero && info.LastWriteTimeUtc < cutoff))
            {
                break;
            }

            total -= info.Length;
            File.Delete(path);
        }

        return false;
    }
}
