using System.Buffers;
using System.Text;

namespace Hive.SbxProxy.Http;

/// <summary>
/// A buffered reader over one side of an HTTP/1.1 connection that hands out message heads and
/// copies bodies byte-exactly (Content-Length, chunked with trailers, or until close) while
/// counting and, optionally, tapping the payload. Hand-written: the proxy must check every request
/// of a keep-alive connection and forward it unchanged apart from injected fields, which neither
/// Kestrel nor HttpClient allow on a raw intercepted stream.
/// </summary>
internal sealed class HttpReader(Stream stream)
{
    private byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;

    public Stream Stream => stream;

    /// <summary>Bytes already read from the stream but not consumed yet.</summary>
    public ReadOnlyMemory<byte> Buffered => _buffer.AsMemory(_start, _end - _start);

    public void Prepend(ReadOnlySpan<byte> data)
    {
        EnsureSpace(data.Length);
        data.CopyTo(_buffer.AsSpan(_end));
        _end += data.Length;
    }

    private void EnsureSpace(int more)
    {
        if (_end + more <= _buffer.Length)
        {
            return;
        }

        var used = _end - _start;
        if (used + more > _buffer.Length)
        {
            var bigger = new byte[Math.Max(_buffer.Length * 2, used + more)];
            Buffer.BlockCopy(_buffer, _start, bigger, 0, used);
            _buffer = bigger;
        }
        else
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, used);
        }

        _start = 0;
        _end = used;
    }

    private async Task<bool> FillAsync(CancellationToken cancellationToken)
    {
        EnsureSpace(4096);
        var n = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
        _end += n;
        return n > 0;
    }

    /// <summary>
    /// The next message head (start line + headers + CRLFCRLF); null at a clean end of stream before
    /// any byte of a new message. Throws <see cref="HttpMessageException"/> past <paramref name="max"/> bytes.
    /// </summary>
    public async Task<byte[]?> ReadHeadAsync(int max, CancellationToken cancellationToken)
    {
        var searched = 0;
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            var at = span[Math.Max(0, searched - 3)..].IndexOf("\r\n\r\n"u8);
            if (at >= 0)
            {
                var length = Math.Max(0, searched - 3) + at + 4;
                if (length > max)
                {
                    throw new HttpMessageException(431, "message head too large");
                }

                var head = span[..length].ToArray();
                _start += length;
                return head;
            }

            searched = span.Length;
            if (searched > max)
            {
                throw new HttpMessageException(431, "message head too large");
            }

            if (!await FillAsync(cancellationToken))
            {
                if (_end == _start)
                {
                    return null;
                }

                throw new HttpMessageException(400, "connection closed in the middle of a message head");
            }
        }
    }

    private async Task<string> ReadLineAsync(int max, CancellationToken cancellationToken)
    {
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            var at = span.IndexOf("\r\n"u8);
            if (at >= 0)
            {
                var line = Encoding.ASCII.GetString(span[..at]);
                _start += at + 2;
                return line;
            }

            if (span.Length > max)
            {
                throw new HttpMessageException(400, "line too long in a chunked body");
            }

            if (!await FillAsync(cancellationToken))
            {
                throw new HttpMessageException(400, "connection closed in the middle of a chunked body");
            }
        }
    }

    /// <summary>Reads what is available (buffered bytes first); 0 at end of stream.</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (_end > _start)
        {
            var n = Math.Min(destination.Length, _end - _start);
            _buffer.AsMemory(_start, n).CopyTo(destination);
            _start += n;
            return n;
        }

        return await stream.ReadAsync(destination, cancellationToken);
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes (a small body, to send with its head in one write).</summary>
    public async Task<byte[]> ReadExactAsync(int count, CancellationToken cancellationToken)
    {
        var data = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = await ReadAsync(data.AsMemory(read), cancellationToken);
            if (n == 0)
            {
                throw new HttpMessageException(502, "connection closed before the end of the body");
            }

            read += n;
        }

        return data;
    }

    /// <summary>Copies exactly <paramref name="count"/> body bytes to <paramref name="destination"/>.</summary>
    public async Task<long> CopyExactlyAsync(long count, Stream destination, Action<ReadOnlySpan<byte>>? tap, CancellationToken cancellationToken)
    {
        var remaining = count;
        var chunk = ArrayPool<byte>.Shared.Rent((int)Math.Min(64 * 1024, Math.Max(1, count)));
        try
        {
            while (remaining > 0)
            {
                var n = await ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, remaining)), cancellationToken);
                if (n == 0)
                {
                    throw new HttpMessageException(502, "connection closed before the end of the body");
                }

                tap?.Invoke(chunk.AsSpan(0, n));
                await destination.WriteAsync(chunk.AsMemory(0, n), cancellationToken);
                remaining -= n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        return count;
    }

    /// <summary>Copies a chunked body with its framing and trailers unchanged; the tap sees the payload only. Returns bytes written.</summary>
    public async Task<long> CopyChunkedAsync(Stream destination, Action<ReadOnlySpan<byte>>? tap, CancellationToken cancellationToken)
    {
        long written = 0;
        while (true)
        {
            var line = await ReadLineAsync(1024, cancellationToken);
            var sizeText = line.Split(';', 2)[0].Trim();
            if (sizeText.Length is 0 or > 15 || !long.TryParse(sizeText, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var size) || size < 0)
            {
                throw new HttpMessageException(400, "invalid chunk size");
            }

            var header = Encoding.ASCII.GetBytes(line + "\r\n");
            await destination.WriteAsync(header, cancellationToken);
            written += header.Length;
            if (size == 0)
            {
                // Trailers, then the empty line.
                while (true)
                {
                    var trailer = await ReadLineAsync(8192, cancellationToken);
                    var bytes = Encoding.ASCII.GetBytes(trailer + "\r\n");
                    await destination.WriteAsync(bytes, cancellationToken);
                    written += bytes.Length;
                    if (trailer.Length == 0)
                    {
                        await destination.FlushAsync(cancellationToken);
                        return written;
                    }
                }
            }

            written += await CopyExactlyAsync(size, destination, tap, cancellationToken);
            if (await ReadLineAsync(2, cancellationToken) != string.Empty)
            {
                throw new HttpMessageException(400, "chunk not followed by CRLF");
            }

            await destination.WriteAsync("\r\n"u8.ToArray(), cancellationToken);
            await destination.FlushAsync(cancellationToken);
            written += 2;
        }
    }

    /// <summary>Copies everything until the stream ends (a response without length).</summary>
    public async Task<long> CopyToEndAsync(Stream destination, Action<ReadOnlySpan<byte>>? tap, CancellationToken cancellationToken)
    {
        long written = 0;
        var chunk = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            int n;
            while ((n = await ReadAsync(chunk, cancellationToken)) > 0)
            {
                tap?.Invoke(chunk.AsSpan(0, n));
                await destination.WriteAsync(chunk.AsMemory(0, n), cancellationToken);
                await destination.FlushAsync(cancellationToken);
                written += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        return written;
    }
}

/// <summary>A message the proxy cannot pass on; <see cref="Status"/> is what the client is told.</summary>
internal sealed class HttpMessageException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
