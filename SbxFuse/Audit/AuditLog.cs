using System.Buffers;
using System.Text.Json;

namespace Hive.SbxFuse.Audit;

/// <summary>One file operation as recorded.</summary>
internal readonly record struct FsEvent(string Op, string Path, string Decision, long Bytes, long DurationUs, int Errno, string? Target = null);

/// <summary>
/// Appends one JSON line per operation. Fail-closed: <see cref="TryRecord"/> returning false
/// makes the operation fail with EIO — nothing happens that is not on record.
/// </summary>
internal sealed class AuditLog : IDisposable
{
    private readonly Lock _gate = new();
    private readonly FileStream _stream;
    private readonly string _mount;
    private readonly ArrayBufferWriterPool _buffer = new();

    public AuditLog(string path, string mount)
    {
        _mount = mount;
        _stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 0 });
    }

    public bool TryRecord(in FsEvent e)
    {
        try
        {
            lock (_gate)
            {
                var writer = _buffer.Reset();
                using (var json = new Utf8JsonWriter(writer))
                {
                    json.WriteStartObject();
                    json.WriteNumber("ts_ms", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                    json.WriteString("kind", "fs." + e.Op);
                    json.WriteString("mount", _mount);
                    json.WriteString("path", e.Path);
                    if (e.Target is not null)
                    {
                        json.WriteString("target", e.Target);
                    }

                    json.WriteString("decision", e.Decision);
                    json.WriteNumber("bytes", e.Bytes);
                    json.WriteNumber("duration_us", e.DurationUs);
                    json.WriteNumber("errno", e.Errno);
                    json.WriteEndObject();
                }

                writer.Write("\n"u8);
                _stream.Write(writer.WrittenSpan); // one write(2) per event: a line is all there or not at all
            }

            return true;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary><c>artifact.written</c>: a file the agent wrote, as stored when its last handle closed.</summary>
    public bool TryRecordArtifact(string path, long size, string? sha256)
    {
        try
        {
            lock (_gate)
            {
                var writer = _buffer.Reset();
                using (var json = new Utf8JsonWriter(writer))
                {
                    json.WriteStartObject();
                    json.WriteNumber("ts_ms", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                    json.WriteString("kind", "artifact.written");
                    json.WriteString("mount", _mount);
                    json.WriteString("path", path);
                    json.WriteNumber("size", size);
                    if (sha256 is null)
                    {
                        json.WriteNull("sha256");
                    }
                    else
                    {
                        json.WriteString("sha256", sha256);
                    }

                    json.WriteEndObject();
                }

                writer.Write("\n"u8);
                _stream.Write(writer.WrittenSpan);
            }

            return true;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public void Dispose() => _stream.Dispose();

    private sealed class ArrayBufferWriterPool
    {
        private readonly System.Buffers.ArrayBufferWriter<byte> _writer = new(512);

        public System.Buffers.ArrayBufferWriter<byte> Reset()
        {
            _writer.ResetWrittenCount();
            return _writer;
        }
    }
}
