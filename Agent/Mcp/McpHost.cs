using System.Net;
using Hive.Agent.Exec;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using ModelContextProtocol.Protocol;

namespace Hive.Agent.Mcp;

/// <summary>
/// The MCP server (official SDK, Streamable HTTP) inside the agent: at <c>/mcp</c> on the agent's
/// socket (the Controller forwards <c>/api/v1/hiveboxes/:id/mcp</c> there) and, in the default
/// image, on a TCP port of the sandbox's loopback — where only <c>/mcp</c> is served, never the
/// agent's own RPCs.
/// </summary>
/// <remarks>
/// The TCP port has no authentication of its own (its tools act as the sandbox's root), so it must
/// not be reachable from outside the sandbox: not from another sandbox, not from a user on the host
/// through the veth. Loopback only; <c>sandbox.url</c> still reaches it because ingress tunnels
/// through the agent's socket to 127.0.0.1 inside the sandbox (see <see cref="Tunnel"/>).
/// </remarks>
internal static class McpHost
{
    /// <summary>
    /// Results keep their null fields: the output schemas declare every field (nullable ones as
    /// <c>[T, "null"]</c>), and clients that validate structured content (the TypeScript SDK does)
    /// reject an object that leaves one out.
    /// </summary>
    private static readonly System.Text.Json.JsonSerializerOptions ResultJson = new(ModelContextProtocol.McpJsonUtilities.DefaultOptions)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never,
    };

    public static void Configure(WebApplicationBuilder builder, ExecService exec, int? port)
    {
        builder.Services.AddSingleton(exec);
        builder.Services
            .AddMcpServer(options =>
            {
                options.ServerInfo = new Implementation { Name = "hive-sandbox", Title = "Hive sandbox", Version = AgentInfo.Version };
                options.ServerInstructions = "Tools that run inside a Hive sandbox: a shell (exec) and file tools. Paths are absolute paths inside the sandbox; workspaces are usually under /workspace. Every call is confined to the sandbox and audited.";
            })
            // Clients that use the initialize handshake (today's SDKs) get a session (Mcp-Session-Id,
            // DELETE ends it); clients of the 2026-07-28 revision are served statelessly.
            .WithHttpTransport(options => options.SessionMode = ModelContextProtocol.AspNetCore.HttpServerSessionMode.StatefulForInitializeClients)
            .WithTools<SandboxTools>(ResultJson)
            .WithRequestFilters(filters => filters.AddCallToolFilter(ArgumentValidator.Filter));
        if (port is { } tcp)
        {
            // Not ListenLocalhost: it warns at every start where ::1 does not exist (IPv6 is off in
            // networked sandboxes). HTTP/1.1 only: without TLS Kestrel cannot offer HTTP/2 next to it.
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Listen(IPAddress.Loopback, tcp, l => l.Protocols = HttpProtocols.Http1);
                if (HasIPv6Loopback())
                {
                    kestrel.Listen(IPAddress.IPv6Loopback, tcp, l => l.Protocols = HttpProtocols.Http1);
                }
            });
        }
    }

    /// <summary>True when the sandbox's loopback has ::1 (listed in /proc/net/if_inet6, see ipv6(7)).</summary>
    private static bool HasIPv6Loopback()
    {
        try
        {
            return File.ReadLines("/proc/net/if_inet6").Any(l => l.StartsWith("00000000000000000000000000000001 ", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false; // no IPv6 at all
        }
    }

    public static void Map(WebApplication app, int? port)
    {
        if (port is { } tcp)
        {
            app.Use(async (context, next) =>
            {
                if (context.Connection.LocalPort == tcp && !context.Request.Path.StartsWithSegments("/mcp", StringComparison.Ordinal))
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return;
                }

                await next(context);
            });
        }

        app.MapMcp("/mcp");
        Tunnel.Map(app);
    }
}
