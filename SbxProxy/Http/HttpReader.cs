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
    /// any byte of a new message. Throws <see cref="HttpMessageException"/> past <paramref name="max"/>
    /// bytes, and for a bare LF or CR anywhere in the head: only CRLF ends a line here, because a
    /// server that also accepts a lone LF would see different lines than the rules saw (RFC 9112 §2.2).
    /// </summary>
    public async Task<byte[]?> ReadHeadAsync(int max, CancellationToken cancellationToken)
    {
        var scanned = 0;
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            var length = FindHeadEnd(span, ref scanned);
            if (length >= 0)
            {
                if (length > max)
                {
                    throw new HttpMessageException(431, "message head too large");
                }

                var head = span[..length].ToArray();
                _start += length;
                return head;
            }

            if (span.Length > max)
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

    /// <summary>
    /// The length of the head up to and including its CRLFCRLF, or -1 when more bytes are needed.
    /// <paramref name="scanned"/> carries how far line endings were checked (each byte once).
    /// </summary>
    internal static int FindHeadEnd(ReadOnlySpan<byte> span, ref int scanned)
    {
        var i = scanned;
        while (i < span.Length)
        {
            var next = span[i..].IndexOfAny((byte)'\r', (byte)'\n');
            if (next < 0)
            {
                i = span.Length;
                break;
            }

            i += next;
            if (span[i] == (byte)'\n')
            {
                throw new HttpMessageException(400, "bare LF in the message head (lines must end with CRLF)");
            }

            if (i + 1 >= span.Length)
            {
                break; // a CR at the end: wait for the byte after it
            }

            if (span[i + 1] != (byte)'\n')
            {
                throw new HttpMessageException(400, "bare CR in the message head (lines must end with CRLF)");
            }

            if (i >= 2 && span[i - 2] == (byte)'\r' && span[i - 1] == (byte)'\n')
            {
                return i + 2;
            }

            i += 2;
        }

        scanned = i;
        return -1;
    }

    /// <summary>One CRLF-terminated line of a chunked body (size line or trailer); a bare LF or CR is a 400.</summary>
    private async Task<string> ReadLineAsync(int max, CancellationToken cancellationToken)
    {
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            var at = span.IndexOfAny((byte)'\r', (byte)'\n');
            if (at >= 0 && span[at] == (byte)'\n')
            {
                throw new HttpMessageException(400, "bare LF in a chunked body (lines must end with CRLF)");
            }

            if (at >= 0 && at + 1 < span.Length)
            {
                if (span[at + 1] != (byte)'\n')
                {
                    throw new HttpMessageException(400, "bare CR in a chunked body (lines must end with CRLF)");
                }

                var line = Encoding.Latin1.GetString(span[..at]);
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

    /// <summary>
    /// Copies a chunked body, re-framed canonically: each size line is written as plain hex (chunk
    /// extensions are validated, then dropped — a recipient must ignore them anyway, and dropping
    /// them leaves nothing for two parsers to read differently), trailer fields are validated and
    /// passed on, except that framing, routing and credential fields are refused there. The tap
    /// sees the payload only. Returns bytes written.
    /// </summary>
    public async Task<long> CopyChunkedAsync(Stream destination, Action<ReadOnlySpan<byte>>? tap, CancellationToken cancellationToken)
    {
        long written = 0;
        while (true)
        {
            var size = ChunkSize(await ReadLineAsync(1024, cancellationToken));
            var header = Encoding.ASCII.GetBytes(size.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + "\r\n");
            await destination.WriteAsync(header, cancellationToken);
            written += header.Length;
            if (size == 0)
            {
                var trailerBytes = 0;
                while (true)
                {
                    var trailer = await ReadLineAsync(8192, cancellationToken);
                    trailerBytes += trailer.Length + 2;
                    if (trailerBytes > MaxTrailers)
                    {
                        throw new HttpMessageException(400, "trailer section too large");
                    }

                    CheckTrailer(trailer);
                    var bytes = Encoding.Latin1.GetBytes(trailer + "\r\n");
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

    private const int MaxTrailers = 64 * 1024;

    /// <summary>Fields that decide framing, routing or identity: never taken from a trailer (RFC 9110 §6.5.1).</summary>
    private static readonly HashSet<string> ForbiddenTrailers = new(StringComparer.OrdinalIgnoreCase)
    {
        "Content-Length", "Transfer-Encoding", "Host", "Connection", "Upgrade", "Te", "Trailer", "Keep-Alive",
        "Proxy-Connection", "Content-Type", "Content-Encoding", "Content-Range", "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "Expect", "Range",
    };

    /// <summary>
    /// chunk-size [ chunk-ext ] of RFC 9112 §7.1, strictly: 1 to 15 hex digits; extensions
    /// <c>;name[=value]</c> with token names and token or quoted-string values (optional blanks around
    /// <c>;</c> and <c>=</c>); nothing else.
    /// </summary>
    internal static long ChunkSize(string line)
    {
        var digits = 0;
        while (digits < line.Length && Uri.IsHexDigit(line[digits]))
        {
            digits++;
        }

        if (digits is 0 or > 15)
        {
            throw new HttpMessageException(400, "invalid chunk size");
        }

        var i = digits;
        while (i < line.Length)
        {
            i = SkipBlanks(line, i);
            if (i >= line.Length || line[i] != ';')
            {
                throw new HttpMessageException(400, "invalid chunk size line");
            }

            i = SkipBlanks(line, i + 1);
            var name = i;
            while (i < line.Length && IsTokenChar(line[i]))
            {
                i++;
            }

            if (i == name)
            {
                throw new HttpMessageException(400, "invalid chunk extension");
            }

            var afterName = SkipBlanks(line, i);
            if (afterName < line.Length && line[afterName] == '=')
            {
                i = SkipBlanks(line, afterName + 1);
                i = i < line.Length && line[i] == '"' ? SkipQuoted(line, i) : SkipToken(line, i);
            }
            else
            {
                i = afterName;
            }
        }

        return long.Parse(line.AsSpan(0, digits), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A trailer line: empty (the end), or <c>name: value</c> with a token name and no control characters.</summary>
    internal static void CheckTrailer(string line)
    {
        if (line.Length == 0)
        {
            return;
        }

        var colon = line.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || line.AsSpan(0, colon).ContainsAnyExcept(TokenChars))
        {
            throw new HttpMessageException(400, "malformed trailer field");
        }

        foreach (var c in line.AsSpan(colon + 1))
        {
            if ((c < 0x20 && c != '\t') || c == 0x7f)
            {
                throw new HttpMessageException(400, "control character in a trailer field");
            }
        }

        if (ForbiddenTrailers.Contains(line[..colon]))
        {
            throw new HttpMessageException(400, $"'{line[..colon]}' is not allowed in a trailer");
        }
    }

    private static readonly System.Buffers.SearchValues<char> TokenChars = System.Buffers.SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private static bool IsTokenChar(char c) => TokenChars.Contains(c);

    private static int SkipBlanks(string line, int i)
    {
        while (i < line.Length && line[i] is ' ' or '\t')
        {
            i++;
        }

        return i;
    }

    private static int SkipToken(string line, int i)
    {
        var start = i;
        while (i < line.Length && IsTokenChar(line[i]))
        {
            i++;
        }

        return i > start ? i : throw new HttpMessageException(400, "invalid chunk extension value");
    }

    private static int SkipQuoted(string line, int i)
    {
        for (i++; i < line.Length; i++)
        {
            var c = line[i];
            if (c == '"')
            {
                return i + 1;
            }

            if (c == '\\')
            {
                i++;
                if (i >= line.Length || (line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
                {
                    throw new HttpMessageException(400, "invalid chunk extension value");
                }
            }
            else if ((c < 0x20 && c != '\t') || c == 0x7f)
            {
                throw new HttpMessageException(400, "invalid chunk extension value");
            }
        }

        throw new HttpMessageException(400, "unterminated quoted chunk extension value");
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
