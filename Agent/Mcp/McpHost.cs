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
/// image, on a TCP port inside the sandbox — where only <c>/mcp</c> is served, never the agent's
/// own RPCs.
/// </summary>
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
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenAnyIP(tcp, l => l.Protocols = HttpProtocols.Http1AndHttp2));
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
