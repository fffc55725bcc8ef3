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
/// </remarks>
public sealed class SpoolWriter : IDisposable
{
    private readonly Lock _gate = new();
    private readonly string _dir;
    private readonly string _source;
    private readonly long _rotateBytes;
    private byte[] _buffer = new byte[4096];
    private FileStream? _file;
    private long _generation;
    private long _length;
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
    }

    /// <summary>Generations not yet consumed by Sbxd after which producers wait. Default 8.</summary>
    public int MaxPendingFiles { get; init; } = 8;

    /// <summary>How long a producer waits for a stalled Sbxd before the append fails. Default 30 s.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Runs a rotation (listing the spool directory, creating the next file) on the producer's
    /// behalf: SbxFuse's request threads may be acting under a sandbox user's identity, which
    /// cannot reach the host-only spool directory. Throws <see cref="IOException"/> if it cannot.
    /// </summary>
    public Action<Action>? RotateAs { get; init; }

    /// <summary>Events appended by this writer.</summary>
    public long Appended { get; private set; }

    public bool TryAppend(Event e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var size = e.CalculateSize();
        if (size + 4 > SpoolFiles.MaxRecordBytes)
        {
            return false;
        }

        lock (_gate)
        {
            if (_disposed)
            {
                return false;
            }

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
    }

    /// <summary>Makes everything appended so far survive a host crash (called on the agent's fsync).</summary>
    public bool Sync()
    {
        lock (_gate)
        {
            try
            {
                _file?.Flush(flushToDisk: true);
                return true;
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                return false;
            }
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

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _file?.Dispose();
            _file = null;
        }
    }
}
