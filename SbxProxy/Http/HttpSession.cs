using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Hive.Policy.Net;
using Hive.Protos.V1;
using Hive.SbxProxy.Llm;

namespace Hive.SbxProxy.Http;

/// <summary>
/// One intercepted HTTP/1.1 connection (plain, or decrypted TLS) to one destination. Every request
/// on it is parsed and decided on its own (a keep-alive connection cannot smuggle a later request
/// past the rules), secrets are injected into allowed requests, the exchange is forwarded over one
/// upstream connection and recorded as a <c>net.http</c> event (plus <c>llm.call</c> for LLM APIs).
/// </summary>
internal sealed partial class HttpSession(ProxyState state, string host, int port, bool tls, HttpReader client) : IAsyncDisposable
{
    private const int MaxHead = 64 * 1024;
    private const long MaxDrain = 1024 * 1024;

    /// <summary>Bodies up to this size travel in the same write as their head.</summary>
    private const int SmallBody = 16 * 1024;
    private Socket? _upstreamSocket;
    private Stream? _upstream;
    private HttpReader? _upstreamReader;
    private string _upstreamIp = string.Empty;

    private string Protocol => tls ? "https" : "http";

    private Stream ClientStream => client.Stream;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            byte[]? head;
            using (var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                idle.CancelAfter(TimeSpan.FromMinutes(5));
                try
                {
                    head = await client.ReadHeadAsync(MaxHead, idle.Token);
                }
                catch (HttpMessageException ex)
                {
                    Interlocked.Increment(ref state.Counters.Denied);
                    state.Audit.Net("net.http", false, new NetEvent { Protocol = Protocol, Host = host, Port = (uint)port, Status = ex.Status, Error = ex.Message });
                    await RespondAsync(ex.Status, new { error = ex.Message }, close: true, deny: true, cancellationToken);
                    return;
                }
            }

            if (head is null || !await HandleAsync(head, cancellationToken))
            {
                return;
            }
        }
    }

    /// <summary>One request/response exchange; false when the connection must end afterwards.</summary>
    private async Task<bool> HandleAsync(byte[] rawHead, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref state.Counters.Requests);
        var ev = new NetEvent { Protocol = Protocol, Host = host, Port = (uint)port };
        HttpHead request;
        try
        {
            request = HttpHead.Parse(rawHead, request: true);
        }
        catch (HttpMessageException ex)
        {
            return await DenyAsync(ev, ex.Status, "malformed request: " + ex.Message, "protocol", null, close: true, cancellationToken);
        }

        var method = request.StartLine[0];
        var target = request.StartLine[1];
        var http11 = request.StartLine[2] == "HTTP/1.1";
        ev.Method = method;
        if (target.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || target.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            // Absolute form (a client that thinks it talks to a proxy): the authority must be the destination too.
            if (OriginForm(target) is not { } originForm)
            {
                return await DenyAsync(ev, 403, $"request target '{Short(target)}' names another host than the connection's destination {host}", "host-mismatch", null, close: true, cancellationToken);
            }

            target = originForm;
        }

        if (method == "CONNECT" || !target.StartsWith('/'))
        {
            return await DenyAsync(ev, 405, $"{method} {Short(target)} is not forwarded (the sandbox's egress is transparent: connect to the host itself)", "protocol", null, close: true, cancellationToken);
        }

        var q = target.IndexOf('?', StringComparison.Ordinal);
        var rawPath = q < 0 ? target : target[..q];
        var query = q < 0 ? string.Empty : target[(q + 1)..];
        ev.Path = rawPath;
        ev.Query = query;

        // Framing: exactly one of chunked or a single Content-Length, or none (request smuggling defence).
        var transferEncodings = request.GetAll("Transfer-Encoding").ToList();
        var lengths = request.GetAll("Content-Length").Distinct(StringComparer.Ordinal).ToList();
        var chunked = false;
        long length = 0;
        if (transferEncodings.Count > 0)
        {
            if (lengths.Count > 0 || !http11 || !string.Join(",", transferEncodings).Trim().Equals("chunked", StringComparison.OrdinalIgnoreCase))
            {
                return await DenyAsync(ev, 400, "ambiguous or unsupported request framing (Transfer-Encoding must be exactly chunked, in HTTP/1.1, without Content-Length)", "protocol", null, close: true, cancellationToken);
            }

            chunked = true;
        }
        else if (lengths.Count > 1 || (lengths.Count == 1 && (!long.TryParse(lengths[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out length) || length < 0)))
        {
            return await DenyAsync(ev, 400, "invalid Content-Length", "protocol", null, close: true, cancellationToken);
        }

        var keepAlive = http11 ? !request.HasToken("Connection", "close") : request.HasToken("Connection", "keep-alive");
        var body = (chunked, length);

        // The Host header must name the connection's destination (which is what the rules decided on),
        // and be the only one: two parsers may pick different ones.
        var hostHeaders = request.GetAll("Host").Take(2).ToList();
        if (hostHeaders.Count > 1)
        {
            return await DenyAsync(ev, 400, "more than one Host header", "protocol", null, close: true, cancellationToken);
        }

        var hostHeader = hostHeaders.Count == 0 ? null : hostHeaders[0];
        if (hostHeader is null ? http11 : !HostMatches(hostHeader))
        {
            return await DenyAsync(ev, 403, hostHeader is null ? "request without a Host header" : $"Host header '{Short(hostHeader)}' does not match the connection's destination {host}", "host-mismatch", body, close: !keepAlive, cancellationToken);
        }

        if (RequestPath.Parse(rawPath, out var problem) is not { } path)
        {
            return await DenyAsync(ev, 403, $"path '{Short(rawPath)}' can be read more than one way ({problem})", "path", body, close: !keepAlive, cancellationToken);
        }

        var canonical = path.Decoded;
        var decision = state.Policy.DecideRequest(host, port, method, path);
        ev.Rule = decision.Rule;
        if (!decision.Allowed)
        {
            return await DenyAsync(ev, 403, $"{method} {host}{canonical} is not allowed by the sandbox's egress rules", decision.Rule, body, close: !keepAlive, cancellationToken);
        }

        if (!state.Audit.Healthy)
        {
            await RespondAsync(503, new { error = "the sandbox's audit trail is unavailable; egress is closed" }, close: true, deny: false, cancellationToken);
            return false;
        }

        // Inject: header and query values from the rule, secrets expanded on the host side only, and
        // only toward a host the secret is bound to (checked on every request: a secret's hosts can
        // be narrowed after the rule was made), over TLS unless the secret allows plain HTTP.
        var outgoingQuery = query;
        if (decision.Matched is { Inject.IsEmpty: false } rule)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var name in rule.Inject.Headers.Values.Concat(rule.Inject.Query.Values).SelectMany(EgressPolicy.SecretNamesIn).Distinct(StringComparer.Ordinal))
            {
                var secret = state.Secrets.Get(name);
                if (secret is null)
                {
                    return await FailAsync(ev, 502, $"secret '{name}' used by rule {rule.Name} is not set on the host", body, cancellationToken);
                }

                if (secret.RefusalFor(name, host, tls) is { } refusal)
                {
                    return secret.Bound
                        ? await DenyAsync(ev, 403, refusal + "; the request was not sent", "secret " + name, body, close: !keepAlive, cancellationToken)
                        : await FailAsync(ev, 502, refusal, body, cancellationToken);
                }

                values[name] = secret.Value;
            }

            foreach (var (name, template) in rule.Inject.Headers)
            {
                request.Set(name, EgressPolicy.ExpandSecrets(template, values.GetValueOrDefault, out _)!);
            }

            foreach (var (name, template) in rule.Inject.Query)
            {
                outgoingQuery = SetQuery(outgoingQuery, name, EgressPolicy.ExpandSecrets(template, values.GetValueOrDefault, out _)!);
            }
        }

        request.StartLine[1] = outgoingQuery.Length > 0 ? rawPath + "?" + outgoingQuery : rawPath;
        request.Remove("Proxy-Connection");

        // Only a WebSocket upgrade may switch protocols: anything else (h2c, TLS upgrades) would
        // turn the connection into a pipe no rule looks into. Other upgrade offers are removed, so
        // the upstream answers in HTTP/1.1 as if none had been made.
        var upgradeTokens = request.GetAll("Upgrade").SelectMany(v => v.Split(',')).Select(t => t.Trim()).Where(t => t.Length > 0).ToList();
        var websocket = method == "GET" && http11 && request.HasToken("Connection", "upgrade")
            && upgradeTokens.Count == 1 && upgradeTokens[0].Equals("websocket", StringComparison.OrdinalIgnoreCase);
        if (!websocket)
        {
            request.Remove("Upgrade");
            request.Remove("HTTP2-Settings");
            request.RemoveToken("Connection", "upgrade");
            request.RemoveToken("Connection", "http2-settings");
        }

        var llm = LlmCalls.Detect(method, canonical);
        var requestCapture = llm is null ? null : new MemoryStream();

        try
        {
            await EnsureUpstreamAsync(cancellationToken);
        }
        catch (UpstreamRefusedException ex)
        {
            return await DenyAsync(ev, 502, ex.Message, "upstream address", body, close: true, cancellationToken);
        }
        catch (Exception ex) when (ex is UpstreamException or IOException or SocketException or System.Security.Authentication.AuthenticationException)
        {
            Interlocked.Increment(ref state.Counters.UpstreamErrors);
            return await FailAsync(ev, 502, ex.Message, body, cancellationToken);
        }

        ev.Ip = _upstreamIp;
        long bytesOut = 0, bytesIn = 0;
        var responded = false;
        var status = 0;
        HttpHead? response = null;
        try
        {
            var outgoingHead = request.Serialize();
            Action<ReadOnlySpan<byte>>? requestTap = requestCapture is null ? null : data => Capture(requestCapture, data, LlmCalls.MaxRequestCapture);
            try
            {
                if (!chunked && length <= SmallBody)
                {
                    // Head and a small body in one write: one TLS record, one syscall.
                    var payload = await client.ReadExactAsync((int)length, cancellationToken);
                    requestTap?.Invoke(payload);
                    await _upstream!.WriteAsync(Concat(outgoingHead, payload), cancellationToken);
                    bytesOut += outgoingHead.Length + payload.Length;
                }
                else
                {
                    await _upstream!.WriteAsync(outgoingHead, cancellationToken);
                    bytesOut += outgoingHead.Length;
                    bytesOut += chunked
                        ? await client.CopyChunkedAsync(_upstream, requestTap, cancellationToken)
                        : await client.CopyExactlyAsync(length, _upstream, requestTap, cancellationToken);
                }
            }
            catch (HttpMessageException ex)
            {
                // The sandbox's body broke its own framing (a bare LF in a chunk line, a forbidden
                // trailer, an early end): the upstream connection is dropped mid-message, so nothing
                // after it can be read there as another request.
                await CloseUpstreamAsync();
                ev.BytesOut = bytesOut;
                return await DenyAsync(ev, 400, "malformed request body: " + ex.Message, "protocol", null, close: true, cancellationToken);
            }

            await _upstream.FlushAsync(cancellationToken);

            byte[] responseHead;
            while (true)
            {
                responseHead = await _upstreamReader!.ReadHeadAsync(MaxHead, cancellationToken)
                    ?? throw new UpstreamException($"{host} closed the connection without answering");
                response = HttpHead.Parse(responseHead, request: false);
                status = int.Parse(response.StartLine[1], System.Globalization.CultureInfo.InvariantCulture);
                if (status is >= 100 and < 200 && status != 101)
                {
                    await ClientStream.WriteAsync(responseHead, cancellationToken); // 100 Continue and friends
                    await ClientStream.FlushAsync(cancellationToken);
                    continue;
                }

                break;
            }

            if (status == 101 && !(websocket && response.HasToken("Upgrade", "websocket")))
            {
                await CloseUpstreamAsync();
                ev.Status = status;
                return await DenyAsync(ev, 502, $"{host} answered 101 Switching Protocols ({Short(response.Get("Upgrade") ?? "no Upgrade header")}) to a request that did not ask for a WebSocket; only a requested WebSocket upgrade may switch protocols", "protocol", null, close: true, cancellationToken);
            }

            RedactHeaders(response);
            var noBody = method == "HEAD" || status is 204 or 304 or 101;

            // Response framing (RFC 9112 §6.3): Transfer-Encoding overrides Content-Length, which is
            // then removed so the sandbox's client cannot read the body differently.
            var responseEncodings = response.GetAll("Transfer-Encoding").SelectMany(v => v.Split(',')).Select(t => t.Trim()).Where(t => t.Length > 0).ToList();
            var responseChunked = responseEncodings.Count > 0 && responseEncodings[^1].Equals("chunked", StringComparison.OrdinalIgnoreCase);
            long responseLength = -1;
            if (responseEncodings.Count > 0)
            {
                response.Remove("Content-Length");
            }
            else if (response.GetAll("Content-Length").Distinct(StringComparer.Ordinal).ToList() is { Count: > 0 } responseLengths)
            {
                if (responseLengths.Count > 1 || !long.TryParse(responseLengths[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out responseLength))
                {
                    throw new HttpMessageException(502, "invalid Content-Length from upstream");
                }
            }

            var untilClose = !noBody && !responseChunked && responseLength < 0;
            var responseCapture = llm is null ? null : new MemoryStream();
            Action<ReadOnlySpan<byte>>? responseTap = responseCapture is null ? null : data => Capture(responseCapture, data, LlmCalls.MaxResponseCapture);
            var clientHead = response.Serialize();
            var bodyDone = false;
            if (!noBody && !responseChunked && responseLength is >= 0 and <= SmallBody)
            {
                var payload = await _upstreamReader.ReadExactAsync((int)responseLength, cancellationToken);
                responseTap?.Invoke(payload);
                await ClientStream.WriteAsync(Concat(clientHead, payload), cancellationToken);
                bytesIn += payload.Length;
                bodyDone = true;
            }
            else
            {
                await ClientStream.WriteAsync(clientHead, cancellationToken);
            }

            responded = true;
            bytesIn += clientHead.Length;
            ev.Status = status;

            if (status == 101)
            {
                await ClientStream.FlushAsync(cancellationToken);
                ev.Protocol = tls ? "wss" : "ws";
                ev.DurationUs = Elapsed(started);
                if (!state.Audit.Net("net.websocket", true, ev.Clone()))
                {
                    return false;
                }

                var (up, down) = await Splice.RunAsync(client, ClientStream, _upstreamReader, _upstream, cancellationToken);
                ev.BytesOut = bytesOut + up;
                ev.BytesIn = bytesIn + down;
                ev.DurationUs = Elapsed(started);
                state.Audit.Net("net.websocket.closed", true, ev);
                return false;
            }

            if (!noBody && !bodyDone)
            {
                bytesIn += responseChunked
                    ? await _upstreamReader.CopyChunkedAsync(ClientStream, responseTap, cancellationToken)
                    : untilClose
                        ? await _upstreamReader.CopyToEndAsync(ClientStream, responseTap, cancellationToken)
                        : await _upstreamReader.CopyExactlyAsync(responseLength, ClientStream, responseTap, cancellationToken);
            }

            await ClientStream.FlushAsync(cancellationToken);
            var closeAfter = !keepAlive || untilClose || response.HasToken("Connection", "close") || response.StartLine[0] == "HTTP/1.0";
            if (closeAfter)
            {
                await CloseUpstreamAsync();
            }

            ev.BytesOut = bytesOut;
            ev.BytesIn = bytesIn;
            ev.DurationUs = Elapsed(started);
            Interlocked.Add(ref state.Counters.BytesOut, bytesOut);
            Interlocked.Add(ref state.Counters.BytesIn, bytesIn);
            if (!state.Audit.Net("net.http", true, ev))
            {
                return false;
            }

            if (llm is { } api)
            {
                var call = LlmCalls.Parse(api, canonical, query, requestCapture!.ToArray(), responseCapture!.ToArray(), response.Get("Content-Encoding"), response.Get("Content-Type"));
                call.Host = host;
                call.Status = status;
                call.LatencyMs = ev.DurationUs / 1000;
                if (!state.Audit.Llm(call))
                {
                    return false;
                }
            }

            return !closeAfter;
        }
        catch (Exception ex) when (ex is IOException or SocketException or UpstreamException or HttpMessageException or ObjectDisposedException)
        {
            Interlocked.Increment(ref state.Counters.UpstreamErrors);
            await CloseUpstreamAsync();
            ev.BytesOut = bytesOut;
            ev.BytesIn = bytesIn;
            ev.Status = responded ? status : 502;
            ev.Error = ex.Message;
            ev.DurationUs = Elapsed(started);
            state.Audit.Net("net.http", true, ev);
            if (!responded)
            {
                await RespondAsync(502, new { error = "upstream failure", detail = ex.Message, host }, close: true, deny: false, cancellationToken);
            }

            return false;
        }
    }

    /// <summary>
    /// The origin form (path and query) of an absolute-form target whose authority names exactly
    /// the connection's destination; null otherwise (userinfo, another host, an IPv6 literal).
    /// Parsed by hand: <see cref="Uri"/> would normalise the path (dot segments, backslashes) before
    /// the rules see it.
    /// </summary>
    private string? OriginForm(string target)
    {
        var rest = target[(target.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var end = rest.AsSpan().IndexOfAny('/', '?', '#');
        var authority = end < 0 ? rest : rest[..end];
        if (authority.Length == 0 || authority.Contains('@', StringComparison.Ordinal) || !HostMatches(authority))
        {
            return null;
        }

        var path = end < 0 ? "/" : rest[end..];
        return path.StartsWith('?') ? "/" + path : path;
    }

    private bool HostMatches(string hostHeader)
    {
        var name = hostHeader;
        if (name.StartsWith('['))
        {
            return false; // an IPv6 literal never names our destination
        }

        var colon = name.LastIndexOf(':');
        if (colon >= 0)
        {
            if (!int.TryParse(name.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
            {
                return false;
            }

            name = name[..colon];
        }

        return name.TrimEnd('.').Equals(host, StringComparison.OrdinalIgnoreCase);
    }

    private async Task EnsureUpstreamAsync(CancellationToken cancellationToken)
    {
        if (_upstream is not null && _upstreamSocket is { Connected: true } && !(_upstreamSocket.Poll(0, SelectMode.SelectRead) && _upstreamSocket.Available == 0))
        {
            return; // reuse: still open and the server has not closed its side
        }

        await CloseUpstreamAsync();
        var (socket, remote) = await state.Upstream.ConnectAsync(host, port, cancellationToken);
        _upstreamSocket = socket;
        _upstreamIp = remote.Address.ToString();
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        if (tls)
        {
            stream = await state.Upstream.WrapTlsAsync(stream, host, cancellationToken);
        }

        _upstream = stream;
        _upstreamReader = new HttpReader(stream);
    }

    private async Task CloseUpstreamAsync()
    {
        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }

        _upstream = null;
        _upstreamReader = null;
        _upstreamSocket = null;
    }

    private void RedactHeaders(HttpHead response)
    {
        var secrets = state.Secrets.KnownValues;
        if (secrets.Count == 0)
        {
            return;
        }

        for (var i = 0; i < response.Headers.Count; i++)
        {
            var (name, value) = response.Headers[i];
            var redacted = Audit.NetAudit.Redact(value, secrets);
            if (!ReferenceEquals(redacted, value))
            {
                response.Headers[i] = new(name, redacted);
            }
        }
    }

    private static string SetQuery(string query, string name, string value)
    {
        var encoded = Uri.EscapeDataString(name) + "=" + Uri.EscapeDataString(value);
        var parts = query.Length == 0 ? [] : query.Split('&').ToList();
        parts.RemoveAll(p => Uri.UnescapeDataString(p.Split('=', 2)[0]) == name);
        parts.Add(encoded);
        return string.Join('&', parts);
    }

    private static byte[] Concat(byte[] head, byte[] body)
    {
        if (body.Length == 0)
        {
            return head;
        }

        var message = new byte[head.Length + body.Length];
        head.CopyTo(message, 0);
        body.CopyTo(message, head.Length);
        return message;
    }

    private static void Capture(MemoryStream capture, ReadOnlySpan<byte> data, int max)
    {
        if (capture.Length + data.Length <= max)
        {
            capture.Write(data);
        }
    }

    private static long Elapsed(long started) => (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;

    private static string Short(string s) => s.Length <= 200 ? s : s[..200] + "…";

    public async ValueTask DisposeAsync() => await CloseUpstreamAsync();
}
