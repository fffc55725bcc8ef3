using System.Diagnostics;
using System.Globalization;
using System.Net;
using Hive.Controller.Api;
using Hive.Controller.Api.Access;
using Hive.Controller.Events;
using Hive.Controller.Forwarding;
using Hive.Controller.Sandboxes.Store;
using Hive.Protos.V1;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Hive.Controller.Ingress;

/// <summary>
/// <c>/api/v1/hiveboxes/:id/proxy/:port/…</c> (<c>sandbox.url</c> is port 8080): any method, SSE and
/// WebSocket, to a server listening on that port inside the sandbox — through hive-agent, so it
/// works in every network mode. Forwarded by YARP's <see cref="IHttpForwarder"/> over the agent
/// tunnel (<see cref="SandboxProxy"/>): bodies stream both ways, a WebSocket's frames pass as
/// they are. The Controller's API key is checked (by the fallback policy, like every endpoint); no
/// credential of the caller goes in and no cookie comes out (<see cref="HeaderPolicy"/>).
/// Every request is an <c>ingress.http</c> / <c>ingress.websocket</c> event.
/// </summary>
internal static class ProxyEndpoints
{
    /// <summary>
    /// HTTP/1.1 to the sandbox's server (a WebSocket as an HTTP/1.1 upgrade); no activity timeout:
    /// an SSE stream or WebSocket may stay quiet as long as the caller keeps it open, as before.
    /// </summary>
    private static readonly ForwarderRequestConfig Http11 = new()
    {
        Version = HttpVersion.Version11,
        VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        ActivityTimeout = Timeout.InfiniteTimeSpan,
    };

    public static void MapProxyEndpoints(this IEndpointRouteBuilder app)
    {
        // Bodies are the sandbox server's business (any type); the key and the origin check apply as everywhere.
        app.Map("/api/v1/hiveboxes/{id}/proxy/{port}/{**rest}", (string id, string port, HttpContext http, SandboxStore store, SandboxProxy proxy, IHttpForwarder forwarder, ControllerSpools spools) =>
            ForwardAsync(id, port, http, store, proxy, forwarder, spools)).AcceptsRawBody();
        app.Map("/api/v1/hiveboxes/{id}/proxy/{port}", (string id, string port, HttpContext http, SandboxStore store, SandboxProxy proxy, IHttpForwarder forwarder, ControllerSpools spools) =>
            ForwardAsync(id, port, http, store, proxy, forwarder, spools)).AcceptsRawBody();
    }

    private static async Task ForwardAsync(string id, string portText, HttpContext http, SandboxStore store, SandboxProxy proxy, IHttpForwarder forwarder, ControllerSpools spools)
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
        var query = pathAndQuery.IndexOf('?', StringComparison.Ordinal);
        var audit = new NetEvent
        {
            Protocol = "http",
            Method = http.Request.Method,
            Port = (uint)port,
            Path = query < 0 ? pathAndQuery : pathAndQuery[..query],
            Query = query < 0 ? string.Empty : pathAndQuery[(query + 1)..],
            Ip = http.Connection.RemoteIpAddress?.ToString() ?? string.Empty,
        };

        // What passes is counted on the way: message bytes of a WebSocket, body bytes of anything else.
        var webSocket = http.WebSockets.IsWebSocketRequest;
        var fromCaller = new WebSocketFrameMeter();
        var toCaller = new WebSocketFrameMeter();
        long bodyIn = 0, bodyOut = 0;
        var requestBody = http.Request.Body;
        var responseBody = http.Response.Body;
        if (webSocket)
        {
            audit.Protocol = "websocket";
            if (http.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade)
            {
                http.Features.Set<IHttpUpgradeFeature>(new MeteredUpgradeFeature(upgrade, fromCaller, toCaller));
            }

            if (http.Features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } connect)
            {
                http.Features.Set<IHttpExtendedConnectFeature>(new MeteredConnectFeature(connect, fromCaller, toCaller));
            }
        }
        else
        {
            http.Request.Body = new ObservedStream(requestBody, b => bodyIn += b.Length, null);
            http.Response.Body = new ObservedStream(responseBody, null, b => bodyOut += b.Length);
        }

        try
        {
            var transformer = new SandboxTransformer(pathAndQuery, host: $"localhost:{port}", forwardedPrefix: prefix);
            var error = await forwarder.SendAsync(http, SandboxProxy.Prefix(name, port), proxy.Client, Http11, transformer);
            ForwardFailure.ThrowIfRefused(error, http, audit, reason => webSocket
                ? $"sandbox '{name}': the WebSocket to port {port} failed: {reason}"
                : $"sandbox '{name}': {reason}");
        }
        finally
        {
            http.Request.Body = requestBody;
            http.Response.Body = responseBody;
            audit.BytesIn = webSocket ? fromCaller.MessageBytes : bodyIn;
            audit.BytesOut = webSocket ? toCaller.MessageBytes : bodyOut;
            audit.DurationUs = (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;
            audit.Status = audit.Status == 0 ? http.Response.StatusCode : audit.Status;
            spools.TryRecord(name, new Event { Kind = "ingress." + audit.Protocol, Decision = "allow", Net = audit });
        }
    }
}
