using System.Buffers.Binary;
using Google.Protobuf;
using Hive.Protos.V1;

namespace Hive.Events.Spool;

/// <summary>
/// A producer's side of the audit path (SbxFuse, the Controller, SbxProxy): each event is one
/// <c>write(2)</c> to an append-only spool file that Sbxd sequences into the sandbox's durable log
/// and deletes once that is on disk. A write that returns has survived the producer crashing; the
/// producer's own <see cref="Sync"/> (on the agent's fsync) makes it survive the host crashing.
/// </summary>
/// <remarks>
/// Fail-closed: <see cref="TryAppend"/> returning false means the event is not on record, and the
/// caller must not let the operation take effect. Backpressure: when Sbxd has fallen behind by
/// <see cref="MaxPendingFiles"/> generations, appends wait for it (up to <see cref="StallTimeout"/>,
/// then fail) instead of dropping anything.
/// <para>The sandbox's event budget (<see cref="EventBudget"/>, shared with Sbxd and the other
/// producers) applies here: identical denials within a short window become one event with a count
/// (<see cref="DenialAggregator"/>); beyond the sandbox's rate an append waits for its turn
/// (<see cref="Throttled"/>); and while the sandbox's log is at its byte budget, <see cref="Admit"/>
/// refuses new operations. An allowed event costs one flag test more than a plain append.</para>
/// </remarks>
public sealed class SpoolWriter : IDisposable
{
    private readonly Lock _gate = new();
    private readonly string _dir;
    private readonly string _source;
    private readonly long _rotateBytes;
    private readonly EventBudget _budget;
    private readonly DenialAggregator _denials = new();
    private readonly Timer _flushTimer;
    private byte[] _buffer = new byte[4096];
    private FileStream? _file;
    private long _generation;
    private long _length;
    private bool _timerArmed;
    private bool _disposed;

    public SpoolWriter(string dir, string source, long rotateBytes = 64L * 1024 * 1024)
    {
        if (!SpoolFiles.IsValidSource(source))
        {
            throw new ArgumentException($"invalid spool source '{source}'", nameof(source));
        }

        _dir = dir;
        _source = source;
        _rotateBytes = rotateBytes;
        Directory.CreateDirectory(dir);
        _generation = SpoolFiles.List(dir).TryGetValue(source, out var existing) ? existing[^1] : 0;
        _budget = EventBudget.Open(dir);
        _flushTimer = new Timer(static state => ((SpoolWriter)state!).FlushExpired(), this, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Generations not yet consumed by Sbxd after which producers wait. Default 8.</summary>
    public int MaxPendingFiles { get; init; } = 8;

    /// <summary>How long a producer waits for a stalled Sbxd before the append fails. Default 30 s.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Whether appends wait for the sandbox's rate budget. Default true (SbxFuse, SbxProxy: what
    /// the sandbox itself does); the Controller's events come from API callers and are not held.
    /// </summary>
    public bool Throttled { get; init; } = true;

    /// <summary>
    /// Runs a rotation (listing the spool directory, creating the next file) on the producer's
    /// behalf: SbxFuse's request threads may be acting under a sandbox user's identity, which
    /// cannot reach the host-only spool directory. Throws <see cref="IOException"/> if it cannot.
    /// </summary>
    public Action<Action>? RotateAs { get; init; }

    /// <summary>Records written by this writer (aggregates count once).</summary>
    public long Appended { get; private set; }

    /// <summary>Repeated denials gathered into aggregates instead of being written one by one.</summary>
    public long Gathered
    {
        get
        {
            lock (_gate)
            {
                return _denials.Gathered;
            }
        }
    }

    /// <summary>The sandbox's shared budget (read by producers for their error messages).</summary>
    public EventBudget Budget => _budget;

    /// <summary>
    /// Admission of a new operation that needs an event. False while the sandbox's log is at its
    /// byte budget: the caller refuses the operation (EDQUOT, a refused connection, 507) rather
    /// than do it unrecorded; the refusal is counted and reported when the budget is raised.
    /// Events of operations already admitted are still written by <see cref="TryAppend"/>.
    /// </summary>
    public bool Admit()
    {
        try
        {
            return _budget.Admit();
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    public bool TryAppend(Event e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var size = e.CalculateSize();
        if (size + 4 > SpoolFiles.MaxRecordBytes)
        {
            return false;
        }

        byte[]? key = null;
        long windowNs = 0;
        try
        {
            if (DenialAggregator.IsDenial(e.Decision) && e.Count == 0)
            {
                windowNs = _budget.AggregateWindow.Ticks * 100;
                if (windowNs > 0)
                {
                    key = DenialAggregator.KeyOf(e);
                    lock (_gate)
                    {
                        if (_disposed)
                        {
                            return false;
                        }

                        if (_denials.TryGather(key, e, EventBudget.NowNs(), windowNs))
                        {
                            ArmTimer(windowNs);
                            return true;
                        }
                    }
                }
            }

            if (Throttled)
            {
                var wait = _budget.Reserve();
                if (wait > TimeSpan.Zero)
                {
                    Thread.Sleep(wait); // back-pressure: the operation waits for its turn, nothing is dropped
                }
            }
        }
        catch (ObjectDisposedException)
        {
            return false; // closing
        }

        lock (_gate)
        {
            if (_disposed)
            {
                return false;
            }

            // Repeats gathered so far happened before this event: they go first.
            if (_denials.HasPending && !WritePendingLocked())
            {
                return false;
            }

            if (!WriteLocked(e, size))
            {
                return false;
            }

            if (key is not null)
            {
                _denials.Remember(key, EventBudget.NowNs(), windowNs);
            }

            return true;
        }
    }

    /// <summary>Makes everything appended so far (gathered repeats included) survive a host crash (called on the agent's fsync).</summary>
    public bool Sync()
    {
        lock (_gate)
        {
            try
            {
                if (_denials.HasPending && !WritePendingLocked())
                {
                    return false;
                }

                _file?.Flush(flushToDisk: true);
                return true;
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                return false;
            }
        }
    }

    private void ArmTimer(long windowNs)
    {
        if (!_timerArmed)
        {
            _timerArmed = true;
            _flushTimer.Change(TimeSpan.FromTicks(Math.Max(1, windowNs / 100)), Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The window of gathered repeats ended: they go out now (the producer may have gone quiet).</summary>
    private void FlushExpired()
    {
        lock (_gate)
        {
            _timerArmed = false;
            if (_disposed)
            {
                return;
            }

            if (_denials.HasPending)
            {
                // A failure here leaves them pending: the next append, sync or shutdown tries again.
                WritePendingLocked();
            }

            var windowNs = _budget.AggregateWindow.Ticks * 100;
            _denials.Expire(EventBudget.NowNs(), windowNs);
            if (_denials.HasPending)
            {
                ArmTimer(windowNs);
            }
        }
    }

    private bool WritePendingLocked()
    {
        foreach (var aggregate in _denials.TakePending(EventBudget.NowNs()))
        {
            if (!WriteLocked(aggregate, aggregate.CalculateSize()))
            {
                return false;
            }
        }

        return true;
    }

    private bool WriteLocked(Event e, int size)
    {
        try
        {
            if (_file is null || _length >= _rotateBytes)
            {
                if (RotateAs is { } rotateAs)
                {
                    rotateAs(Rotate);
                }
                else
                {
                    Rotate();
                }
            }

            if (_buffer.Length < size + 4)
            {
                _buffer = new byte[Math.Max(size + 4, _buffer.Length * 2)];
            }

            BinaryPrimitives.WriteUInt32LittleEndian(_buffer, (uint)size);
            e.WriteTo(_buffer.AsSpan(4, size));
            _file!.Write(_buffer, 0, size + 4); // unbuffered: exactly one write(2), so a record is whole or torn at the end
            _length += size + 4;
            Appended++;
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or TimeoutException)
        {
            // Whatever part of the record reached the file stays at its end: continue in a new generation.
            _file?.Dispose();
            _file = null;
            return false;
        }
    }

    private void Rotate()
    {
        _file?.Dispose();
        _file = null;
        WaitForConsumer();
        _generation++;
        _file = new FileStream(Path.Combine(_dir, SpoolFiles.FileName(_source, _generation)), new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.Read | FileShare.Delete,
            BufferSize = 0,
        });
        _length = 0;
    }

    private void WaitForConsumer()
    {
        var deadline = Environment.TickCount64 + (long)StallTimeout.TotalMilliseconds;
        while (SpoolFiles.List(_dir).TryGetValue(_source, out var pending) && pending.Count >= MaxPendingFiles)
        {
            if (Environment.TickCount64 > deadline)
            {
                throw new TimeoutException($"the event log has not consumed {_source}'s spool for {StallTimeout.TotalSeconds:0} s");
            }

            Thread.Sleep(10);
        }
    }

    /// <summary>Writes what is still gathered, then closes the spool.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (_denials.HasPending)
            {
                WritePendingLocked();
            }

            _disposed = true;
            _file?.Dispose();
            _file = null;
        }

        _flushTimer.Dispose();
        _budget.Dispose();
    }
}
