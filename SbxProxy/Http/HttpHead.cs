using System.Text;

namespace Hive.SbxProxy.Http;

/// <summary>A parsed HTTP/1.x start line and header list (order and case kept).</summary>
internal sealed class HttpHead
{
    private HttpHead(string[] startLine, List<KeyValuePair<string, string>> headers)
    {
        StartLine = startLine;
        Headers = headers;
    }

    /// <summary>Request: method, target, version. Response: version, status, reason.</summary>
    public string[] StartLine { get; }

    public List<KeyValuePair<string, string>> Headers { get; }

    public string? Get(string name) => Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public IEnumerable<string> GetAll(string name) => Headers.Where(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);

    public void Set(string name, string value)
    {
        Headers.RemoveAll(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase));
        Headers.Add(new(name, value));
    }

    public void Remove(string name) => Headers.RemoveAll(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase));

    /// <summary>True when a comma-separated header (Connection, Upgrade, ...) lists <paramref name="token"/>.</summary>
    public bool HasToken(string name, string token) =>
        GetAll(name).SelectMany(v => v.Split(',')).Any(t => t.Trim().Equals(token, StringComparison.OrdinalIgnoreCase));

    public static HttpHead Parse(byte[] head, bool request)
    {
        // Header bytes outside ASCII are kept as Latin-1 (byte-preserving) and re-encoded the same way.
        var text = Encoding.Latin1.GetString(head, 0, head.Length - 4);
        var lines = text.Split("\r\n");
        var start = lines[0].Split(' ', 3);
        if (request)
        {
            if (start.Length != 3 || start[0].Length == 0 || !start[0].All(char.IsAsciiLetterUpper) || start[1].Length == 0 || start[2] is not ("HTTP/1.1" or "HTTP/1.0"))
            {
                throw new HttpMessageException(400, "malformed request line");
            }
        }
        else if (start.Length < 2 || !start[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || start[1].Length != 3 || !start[1].All(char.IsAsciiDigit))
        {
            throw new HttpMessageException(502, "malformed status line from upstream");
        }

        var headers = new List<KeyValuePair<string, string>>(lines.Length);
        foreach (var line in lines.AsSpan(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || line.AsSpan(0, colon).ContainsAnyExcept(TokenChars))
            {
                throw new HttpMessageException(request ? 400 : 502, "malformed header line");
            }

            // Field values: visible characters, blanks and obs-text; no control character (RFC 9110 §5.5).
            var value = line[(colon + 1)..].Trim(' ', '\t');
            if (value.AsSpan().ContainsAny(ControlChars))
            {
                throw new HttpMessageException(request ? 400 : 502, "control character in a header value");
            }

            headers.Add(new(line[..colon], value));
        }

        return new HttpHead(start, headers);
    }

    /// <summary>Removes <paramref name="token"/> from a comma-separated header (the header goes when nothing is left).</summary>
    public void RemoveToken(string name, string token)
    {
        for (var i = Headers.Count - 1; i >= 0; i--)
        {
            var (key, value) = Headers[i];
            if (!key.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var kept = value.Split(',').Select(t => t.Trim()).Where(t => t.Length > 0 && !t.Equals(token, StringComparison.OrdinalIgnoreCase)).ToList();
            if (kept.Count == 0)
            {
                Headers.RemoveAt(i);
            }
            else
            {
                Headers[i] = new(key, string.Join(", ", kept));
            }
        }
    }

    private static readonly System.Buffers.SearchValues<char> TokenChars = System.Buffers.SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private static readonly System.Buffers.SearchValues<char> ControlChars = System.Buffers.SearchValues.Create(
        "\0\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\n\u000b\u000c\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f\u007f");

    public byte[] Serialize()
    {
        var builder = new StringBuilder(256);
        builder.Append(string.Join(' ', StartLine)).Append("\r\n");
        foreach (var (name, value) in Headers)
        {
            builder.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        builder.Append("\r\n");
        return Encoding.Latin1.GetBytes(builder.ToString());
    }
}
