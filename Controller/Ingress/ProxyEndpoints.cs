using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using Hive.Controller.Api;
using Hive.Controller.Api.Access;
using Hive.Controller.Events;
using Hive.Controller.Sandboxes.Store;
using Hive.Protos.V1;
using Microsoft.AspNetCore.Http.Features;

namespace Hive.Controller.Ingress;

/// <summary>
/// <c>/api/v1/hiveboxes/:id/proxy/:port/…</c> (<c>sandbox.url</c> is port 8080): any method, SSE and
/// WebSocket, to a server listening on that port inside the sandbox — through hive-agent, so it
/// works in every network mode. The Controller's API key is checked (by the fallback policy, like
/// every endpoint); no credential of the caller goes in and no cookie comes out (<see cref="IngressHeaders"/>).
/// Every request is an <c>ingress.http</c> / <c>ingress.websocket</c> event.
/// </summary>
internal static class ProxyEndpoints
{
    public static void MapProxyEndpoints(this IEndpointRouteBuilder app)
    {
        // Bodies are the sandbox server's business (any type); the key and the origin check apply as everywhere.
        app.Map("/api/v1/hiveboxes/{id}/proxy/{port}/{**rest}", (string id, string port, HttpContext http, SandboxStore store, SandboxProxy proxy, ControllerSpools spools) =>
            ForwardAsync(id, port, http, store, proxy, spools)).AcceptsRawBody();
        app.Map("/api/v1/hiveboxes/{id}/proxy/{port}", (string id, string port, HttpContext http, SandboxStore store, SandboxProxy proxy, ControllerSpools spools) =>
            ForwardAsync(id, port, http, store, proxy, spools)).AcceptsRawBody();
    }

    private static async Task ForwardAsync(string id, string portText, HttpContext http, SandboxStore store, SandboxProxy proxy, ControllerSpools spools)
    {
        var name = RouteNames.Require(id);
        store.GetRunning(name);
        spools.RequireBudget(name); // 507: a request that could not be recorded is not forwarded

        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw ApiException.BadRequest($"'{portText}' is not a port number (1-65535)");
        }

        // The raw target keeps the client's own encoding of the path.
        var prefix = $"/api/v1/hiveboxes/{name}/proxy/{portText}";
        var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? (http.Request.Path + http.Request.QueryString);
        var rest = raw.StartsWith(prefix, StringComparison.Ordinal) ? raw[prefix.Length..] : "/";
        var pathAndQuery = rest.Length == 0 || rest[0] == '?' ? "/" + rest : rest;
        var started = Stopwatch.GetTimestamp();
        var audit = new NetEvent { Protocol = "http", Method = http.Request.Method, Port = (uint)port, Path = pathAndQuery.Split('?')[0], Query = pathAndQuery.Contains('?', StringComparison.Ordinal) ? pathAndQuery[(pathAndQuery.IndexOf('?', StringComparison.Ordinal) + 1)..] : string.Empty, Ip = http.Connection.RemoteIpAddress?.ToString() ?? string.Empty };
        try
        {
            if (http.WebSockets.IsWebSocketRequest)
            {
                audit.Protocol = "websocket";
                await WebSocketAsync(name, port, pathAndQuery, http, proxy, audit);
            }
            else
            {
                await HttpAsync(name, port, pathAndQuery, prefix, http, proxy, audit);
            }
        }
        finally
        {
            audit.DurationUs = (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;
            audit.Status = audit.Status == 0 ? http.Response.StatusCode : audit.Status;
            spools.TryRecord(name, new Event { Kind = "ingress." + audit.Protocol, Decision = "allow", Net = audit });
        }
    }

    private static async Task HttpAsync(string name, int port, string pathAndQuery, string prefix, HttpContext http, SandboxProxy proxy, NetEvent audit)
    {
        using var request = new HttpRequestMessage(new HttpMethod(http.Request.Method), SandboxProxy.Target(name, port, pathAndQuery)) { Version = HttpVersion.Version11 };
        var counted = new CountingStream(http.Request.Body);
        if (http.Request.ContentLength > 0 || http.Request.Headers.TransferEncoding.Count > 0)
        {
            request.Content = new StreamContent(counted, 64 * 1024);
        }

        if (request.Content is not null && http.Request.ContentLength is { } length)
        {
            request.Content.Headers.ContentLength = length;
        }

        IngressHeaders.CopyRequest(http.Request, request);
        request.Headers.Host = $"localhost:{port}";
        request.Headers.TryAddWithoutValidation("X-Forwarded-Prefix", prefix);
        request.Headers.TryAddWithoutValidation("X-Forwarded-Proto", http.Request.Scheme);
        request.Headers.TryAddWithoutValidation("X-Forwarded-Host", http.Request.Host.ToString());

        HttpResponseMessage response;
        try
        {
            response = await proxy.Client.SendAsync(request, http.RequestAborted);
        }
        catch (HttpRequestException ex)
        {
            audit.Error = ex.InnerException is IOException inner ? inner.Message : ex.Message;
            audit.Status = StatusCodes.Status502BadGateway;
            throw new ApiException(StatusCodes.Status502BadGateway, $"sandbox '{name}': {audit.Error}");
        }

        using (response)
        {
            IngressHeaders.CopyResponse(response, http.Response);
            http.Response.Headers["X-Accel-Buffering"] = "no";
            await using var body = await response.Content.ReadAsStreamAsync(http.RequestAborted);
            var buffer = new byte[32 * 1024];
            int read;
            try
            {
                while ((read = await body.ReadAsync(buffer, http.RequestAborted)) > 0)
                {
                    await http.Response.Body.WriteAsync(buffer.AsMemory(0, read), http.RequestAborted);
                    await http.Response.Body.FlushAsync(http.RequestAborted); // SSE and other streams pass at once
                    audit.BytesOut += read;
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
                audit.Error = "stream ended early";
            }
        }

        audit.BytesIn = counted.Count;
    }

    private static async Task WebSocketAsync(string name, int port, string pathAndQuery, HttpContext http, SandboxProxy proxy, NetEvent audit)
    {
        using var upstream = new ClientWebSocket();
        foreach (var protocol in http.WebSockets.WebSocketRequestedProtocols)
        {
            upstream.Options.AddSubProtocol(protocol);
        }

        upstream.Options.SetRequestHeader("Host", $"localhost:{port}");
        try
        {
            await upstream.ConnectAsync(SandboxProxy.Target(name, port, pathAndQuery, webSocket: true), proxy.Client, http.RequestAborted);
        }
        catch (Exception ex) when (ex is WebSocketException or HttpRequestException)
        {
            audit.Error = ex.Message;
            audit.Status = StatusCodes.Status502BadGateway;
            throw new ApiException(StatusCodes.Status502BadGateway, $"sandbox '{name}': the WebSocket to port {port} failed: {ex.Message}");
        }

        using var client = await http.WebSockets.AcceptWebSocketAsync(upstream.SubProtocol);
        audit.Status = StatusCodes.Status101SwitchingProtocols;
        using var done = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        var toSandbox = PumpAsync(client, upstream, n => audit.BytesIn += n, done.Token);
        var toClient = PumpAsync(upstream, client, n => audit.BytesOut += n, done.Token);
        // One side closing is passed on; give the other side a moment to answer its close.
        var first = await Task.WhenAny(toSandbox, toClient);
        var other = first == toSandbox ? toClient : toSandbox;
        if (first.IsFaulted || await Task.WhenAny(other, Task.Delay(TimeSpan.FromSeconds(5), http.RequestAborted)) != other)
        {
            await done.CancelAsync();
        }

        try
        {
            await Task.WhenAll(toSandbox, toClient);
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
        {
            // One side closed or failed: the other is closed below.
        }
    }

    /// <summary>Messages from one WebSocket to the other, frames and message boundaries kept; a close is passed on.</summary>
    private static async Task PumpAsync(WebSocket from, WebSocket to, Action<int> count, CancellationToken cancellationToken)
    {
        var buffer = new byte[32 * 1024];
        while (true)
        {
            var result = await from.ReceiveAsync(buffer, cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                if (to.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await to.CloseOutputAsync(result.CloseStatus ?? WebSocketCloseStatus.NormalClosure, result.CloseStatusDescription, cancellationToken);
                }

                return;
            }

            count(result.Count);
            await to.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, cancellationToken);
        }
    }

    /// <summary>Counts the bytes of the request body as they are forwarded.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken);
            Count += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous only");

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
