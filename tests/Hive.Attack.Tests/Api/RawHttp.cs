using System.Net.Sockets;
using System.Text;

namespace Hive.Attack.Tests.Api;

/// <summary>An HTTP/1.1 answer as it came off the wire.</summary>
public sealed record RawResponse(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, string Body)
{
    public IEnumerable<string> All(string name) => Headers.Where(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);

    public string? Header(string name) => All(name).FirstOrDefault();

    public override string ToString() => $"{Status} {string.Join("; ", Headers.Select(h => h.Key + ": " + h.Value))}\n{Body}";
}

/// <summary>
/// One request written byte for byte over a TCP connection to the Controller: the request target
/// exactly as given (HttpClient would normalise <c>/api/../api</c>, <c>%2F</c> or a trailing dot
/// away before it left the machine), any Host header, any number of repeated headers.
/// </summary>
internal static class RawHttp
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    public static async Task<RawResponse> SendAsync(Uri server, string method, string target, string? body = null, string? host = null, params (string Name, string Value)[] headers)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port).WaitAsync(Deadline);
        var stream = tcp.GetStream();
        var head = new StringBuilder();
        head.Append(method).Append(' ').Append(target).Append(" HTTP/1.1\r\n");
        head.Append("Host: ").Append(host ?? server.Authority).Append("\r\n");
        head.Append("Connection: close\r\n");
        foreach (var (name, value) in headers)
        {
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        var payload = body is null ? [] : Encoding.UTF8.GetBytes(body);
        if (body is not null)
        {
            head.Append("Content-Length: ").Append(payload.Length).Append("\r\n");
        }

        head.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()));
        await stream.WriteAsync(payload);
        using var received = new MemoryStream();
        await stream.CopyToAsync(received).WaitAsync(Deadline);
        return Parse(received.ToArray());
    }

    private static RawResponse Parse(byte[] raw)
    {
        var end = raw.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.That(end, Is.GreaterThan(0), "no complete HTTP response head: " + Encoding.UTF8.GetString(raw));
        var lines = Encoding.ASCII.GetString(raw, 0, end).Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).Select(p => KeyValuePair.Create(p[0].Trim(), p[1].Trim())).ToList();
        var body = raw.AsSpan(end + 4);
        var chunked = headers.Any(h => h.Key.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && h.Value.Contains("chunked", StringComparison.OrdinalIgnoreCase));
        return new RawResponse(status, headers, Encoding.UTF8.GetString(chunked ? Dechunk(body) : body));
    }

    private static byte[] Dechunk(ReadOnlySpan<byte> chunked)
    {
        var result = new MemoryStream();
        while (chunked.Length > 0)
        {
            var lineEnd = chunked.IndexOf("\r\n"u8);
            var size = Convert.ToInt32(Encoding.ASCII.GetString(chunked[..lineEnd]).Split(';')[0], 16);
            if (size == 0)
            {
                break;
            }

            result.Write(chunked.Slice(lineEnd + 2, size));
            chunked = chunked[(lineEnd + 2 + size + 2)..];
        }

        return result.ToArray();
    }
}
