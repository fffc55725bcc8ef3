using System.Text;
using System.Text.Json;
using Hive.Protos.V1;

namespace Hive.SbxProxy.Http;

/// <summary>What the sandbox is told when a request is refused or cannot be completed (JSON bodies, always audited first).</summary>
internal sealed partial class HttpSession
{
    /// <summary>A refused request: audited, answered 4xx (502 for a refused upstream address or a 101 nobody asked for) with a JSON body naming the decision; the body is drained so the connection can go on.</summary>
    private async Task<bool> DenyAsync(NetEvent ev, int status, string reason, string rule, (bool Chunked, long Length)? body, bool close, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref state.Counters.Denied);
        ev.Status = status;
        ev.Rule = rule;
        ev.Error = reason;
        if (!state.Audit.Net("net.http", false, ev))
        {
            return false;
        }

        close |= !await DrainAsync(body, cancellationToken);
        await RespondAsync(status, new { error = "egress denied", decision = "deny", reason, rule, host, method = ev.Method, path = ev.Path }, close, deny: true, cancellationToken);
        return !close;
    }

    /// <summary>An allowed request that could not be completed (upstream, secret): 502, audited as an error.</summary>
    private async Task<bool> FailAsync(NetEvent ev, int status, string reason, (bool Chunked, long Length)? body, CancellationToken cancellationToken)
    {
        ev.Status = status;
        ev.Error = reason;
        if (!state.Audit.Net("net.http", true, ev))
        {
            return false;
        }

        await DrainAsync(body, cancellationToken);
        await RespondAsync(status, new { error = "upstream failure", detail = reason, host }, close: true, deny: false, cancellationToken);
        return false;
    }

    private async Task<bool> DrainAsync((bool Chunked, long Length)? body, CancellationToken cancellationToken)
    {
        if (body is not { } b)
        {
            return true;
        }

        try
        {
            if (b.Chunked)
            {
                return false; // unknown size: end the connection instead of reading it all
            }

            if (b.Length > MaxDrain)
            {
                return false;
            }

            await client.CopyExactlyAsync(b.Length, Stream.Null, null, cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is IOException or HttpMessageException)
        {
            return false;
        }
    }

    private async Task RespondAsync(int status, object payload, bool close, bool deny, CancellationToken cancellationToken)
    {
        try
        {
            var json = JsonSerializer.SerializeToUtf8Bytes(payload, ErrorJson);
            var head = $"HTTP/1.1 {status} {Reason(status)}\r\nContent-Type: application/json\r\nContent-Length: {json.Length}\r\nX-Hive-Egress: {(deny ? "deny" : "error")}\r\nConnection: {(close ? "close" : "keep-alive")}\r\n\r\n";
            await ClientStream.WriteAsync(Encoding.ASCII.GetBytes(head), cancellationToken);
            await ClientStream.WriteAsync(json, cancellationToken);
            await ClientStream.FlushAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    /// <summary>Error bodies are read by people and agents: no \u0027-style escapes (the body is JSON, never HTML).</summary>
    private static readonly JsonSerializerOptions ErrorJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Reason(int status) => status switch
    {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
}
