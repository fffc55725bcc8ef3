using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Hive.Controller.Api;
using Hive.Controller.Events;
using Hive.Controller.Forwarding;
using Hive.Controller.Sandboxes.Store;
using Hive.Protos.V1;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Hive.Controller.Mcp;

/// <summary>
/// <c>POST/GET/DELETE /api/v1/hiveboxes/:id/mcp</c>: the sandbox's MCP server (Streamable HTTP,
/// served by hive-agent inside the sandbox with the official SDK), forwarded as is by YARP's
/// <see cref="IHttpForwarder"/> over the agent socket — sessions, SSE streams and all — behind the
/// Controller's bearer key, which never reaches the sandbox (one header policy with ingress:
/// <see cref="HeaderPolicy"/>). Bodies must be JSON, as everywhere in the API.
/// Every <c>tools/call</c> is on record before it is forwarded (<c>mcp.started</c>) and with its
/// outcome after (<c>mcp.call</c>).
/// </summary>
internal static partial class McpEndpoints
{
    private const int MaxBody = 64 * 1024 * 1024;
    private const int MaxCapture = 4 * 1024 * 1024;

    /// <summary>The agent's own server (HTTP/2 with prior knowledge, nothing else on its socket); the connection is <see cref="AgentHttp"/>'s.</summary>
    private const string AgentDestination = "http://hive-agent";

    /// <summary>HTTP/2 only; no activity timeout: a tool call or an SSE stream takes as long as it takes, as before.</summary>
    private static readonly ForwarderRequestConfig Http2 = new()
    {
        Version = HttpVersion.Version20,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        ActivityTimeout = Timeout.InfiniteTimeSpan,
    };

    public static void MapMcpEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/api/v1/hiveboxes/{id}/mcp", ["POST", "GET", "DELETE"], async (string id, HttpContext http, SandboxStore store, AgentHttp agents, IHttpForwarder forwarder, ControllerSpools spools) =>
        {
            var name = RouteNames.Require(id);
            store.GetRunning(name);

            byte[]? body = null;
            var calls = new List<ToolCall>();
            if (HttpMethods.IsPost(http.Request.Method))
            {
                body = await ReadBodyAsync(http.Request);
                calls = ToolCall.Parse(body);
            }

            var session = http.Request.Headers["Mcp-Session-Id"].ToString();
            if (calls.Count > 0)
            {
                spools.RequireBudget(name); // 507: a tool call that could not be recorded is not made
            }

            foreach (var call in calls)
            {
                if (!spools.TryRecord(name, call.Event("mcp.started", session)))
                {
                    throw new ApiException(StatusCodes.Status503ServiceUnavailable, $"sandbox '{name}': the tool call cannot be recorded in the event log, so it was not made");
                }
            }

            var started = Stopwatch.GetTimestamp();
            if (body is not null)
            {
                // Read once to find the tool calls; the forwarder sends the same bytes.
                http.Request.Body = new MemoryStream(body, writable: false);
                http.Request.Headers.ContentLength = body.Length;
                http.Request.Headers.Remove("Transfer-Encoding");
            }

            // Not a WebSocket: an upgrade request is forwarded as the plain request it also is.
            http.Features.Set<IHttpUpgradeFeature>(null);
            http.Features.Set<IHttpExtendedConnectFeature>(null);

            // The answer (JSON or an SSE stream) passes at once; the tool calls' results are read from a copy.
            var capture = calls.Count > 0 ? new MemoryStream() : null;
            var responseBody = http.Response.Body;
            if (capture is { } copy)
            {
                http.Response.Body = new ObservedStream(responseBody, null, b =>
                {
                    if (copy.Length < MaxCapture)
                    {
                        copy.Write(b);
                    }
                });
            }

            ForwarderError error;
            try
            {
                error = await forwarder.SendAsync(http, AgentDestination, agents.For(name), Http2, new SandboxTransformer("/mcp" + http.Request.QueryString, host: null, forwardedPrefix: null));
            }
            finally
            {
                http.Response.Body = responseBody;
            }

            string? failure = null;
            if (error != ForwarderError.None)
            {
                if (!http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested)
                {
                    var reason = ForwardFailure.Reason(http);
                    RecordOutcomes(spools, name, session, calls, null, started, "the sandbox's agent is not reachable: " + reason);
                    throw new ApiException(StatusCodes.Status502BadGateway, $"sandbox '{name}': its MCP server is not reachable ({reason})");
                }

                failure = "the client or the sandbox closed the stream before the result";
            }

            RecordOutcomes(spools, name, session.Length > 0 ? session : http.Response.Headers["Mcp-Session-Id"].ToString(), calls, capture, started, failure);
        });
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()!.MaxRequestBodySize = MaxBody;
        using var buffer = new MemoryStream();
        try
        {
            await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new ApiException(StatusCodes.Status413PayloadTooLarge, $"MCP messages are limited to {MaxBody / (1024 * 1024)} MiB");
        }

        return buffer.ToArray();
    }

    private static void RecordOutcomes(ControllerSpools spools, string name, string session, List<ToolCall> calls, MemoryStream? capture, long started, string? failure)
    {
        if (calls.Count == 0)
        {
            return;
        }

        var results = capture is null ? [] : ToolCall.Results(capture.ToArray());
        var elapsed = (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        foreach (var call in calls)
        {
            var error = results.TryGetValue(call.Id, out var outcome) ? outcome : failure ?? "no result was returned";
            var e = call.Event("mcp.call", session);
            e.Mcp.DurationMs = elapsed;
            e.Mcp.Error = error ?? string.Empty;
            spools.TryRecord(name, e);
        }
    }

    /// <summary>A <c>tools/call</c> request seen on its way in.</summary>
    internal sealed record ToolCall(string Id, string Tool, string Arguments)
    {
        public Event Event(string kind, string session) => new()
        {
            Kind = kind,
            Mcp = new McpEvent { Tool = Tool, Arguments = Arguments, Session = session },
        };

        /// <summary>The tools/call messages of a JSON-RPC message or batch; anything unparsable has none.</summary>
        public static List<ToolCall> Parse(byte[] body)
        {
            var calls = new List<ToolCall>();
            try
            {
                using var doc = JsonDocument.Parse(body);
                var messages = doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement.EnumerateArray().ToList() : [doc.RootElement];
                foreach (var message in messages)
                {
                    if (message.ValueKind == JsonValueKind.Object && message.TryGetProperty("method", out var method) && method.ValueKind == JsonValueKind.String
                        && method.GetString() == "tools/call" && message.TryGetProperty("id", out var id) && message.TryGetProperty("params", out var p) && p.ValueKind == JsonValueKind.Object)
                    {
                        var tool = p.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "(none)";
                        var arguments = p.TryGetProperty("arguments", out var a) ? a.GetRawText() : "{}";
                        calls.Add(new ToolCall(id.GetRawText(), tool, arguments.Length <= 1024 ? arguments : arguments[..1024] + "…"));
                    }
                }
            }
            catch (JsonException)
            {
                // Not JSON: the MCP server answers it with a parse error; nothing was called.
            }

            return calls;
        }

        /// <summary>Outcome per request id in a response (JSON or SSE): null = success, else the error text.</summary>
        public static Dictionary<string, string?> Results(byte[] response)
        {
            var results = new Dictionary<string, string?>(StringComparer.Ordinal);
            var text = Encoding.UTF8.GetString(response).TrimStart();
            var documents = text.StartsWith('{') || text.StartsWith('[')
                ? [text]
                : text.Split('\n').Where(l => l.StartsWith("data:", StringComparison.Ordinal)).Select(l => l[5..].Trim()).ToList();
            foreach (var json in documents)
            {
                try
                {
                    using var doc = JsonDocument.Parse(json);
                    var messages = doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement.EnumerateArray().ToList() : [doc.RootElement];
                    foreach (var message in messages)
                    {
                        if (message.ValueKind != JsonValueKind.Object || !message.TryGetProperty("id", out var id))
                        {
                            continue;
                        }

                        if (message.TryGetProperty("error", out var error))
                        {
                            results[id.GetRawText()] = error.TryGetProperty("message", out var m) ? m.GetString() : error.GetRawText();
                        }
                        else if (message.TryGetProperty("result", out var result))
                        {
                            var isError = result.TryGetProperty("isError", out var flag) && flag.ValueKind == JsonValueKind.True;
                            results[id.GetRawText()] = !isError ? null
                                : result.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Array && content.GetArrayLength() > 0 && content[0].TryGetProperty("text", out var t)
                                    ? t.GetString() ?? "error"
                                    : "error";
                        }
                    }
                }
                catch (JsonException)
                {
                    // A partial or non-JSON event: not a result.
                }
            }

            return results;
        }
    }
}
