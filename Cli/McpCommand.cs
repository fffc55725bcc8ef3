using System.CommandLine;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Hive.Cli;

/// <summary>
/// <c>hive mcp --sandbox NAME</c>: the sandbox's MCP server over stdio, for clients that launch a
/// command. Both ends are the official SDK: an MCP client to the Controller's Streamable HTTP
/// endpoint, an MCP server on stdin/stdout that lists and calls the sandbox's tools through it.
/// </summary>
internal static class McpCommand
{
    public static Command Build(Option<string> apiUrl, Option<string?> apiKey)
    {
        var sandbox = new Option<string>("--sandbox", "-s") { Description = "The sandbox whose tools to serve", Required = true };
        var command = new Command("mcp", "Serve a sandbox's MCP tools on stdin/stdout (for MCP clients that launch a command; HIVEBOX_API_KEY from the environment)") { sandbox };
        command.SetAction(async (parse, ct) =>
        {
            var name = parse.GetValue(sandbox)!;
            var baseUrl = parse.GetValue(apiUrl)!.TrimEnd('/');
            if (!Uri.TryCreate($"{baseUrl}/api/v1/hiveboxes/{Uri.EscapeDataString(name)}/mcp", UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            {
                throw new CliException($"invalid API URL '{baseUrl}'", 2);
            }

            var transport = new HttpClientTransportOptions { Endpoint = endpoint, Name = "hive", TransportMode = HttpTransportMode.StreamableHttp };
            if (parse.GetValue(apiKey) is { Length: > 0 } key)
            {
                transport.AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + key };
            }

            McpClient upstream;
            try
            {
                upstream = await McpClient.CreateAsync(new HttpClientTransport(transport), new McpClientOptions { ClientInfo = new Implementation { Name = "hive-mcp-stdio", Version = "1.0.0" } }, cancellationToken: ct);
            }
            catch (Exception ex) when (ex is HttpRequestException or ModelContextProtocol.McpException or IOException)
            {
                throw new CliException($"cannot reach the MCP server of sandbox '{name}' at {endpoint}: {ex.Message}");
            }

            await using (upstream)
            {
                var options = new McpServerOptions
                {
                    ServerInfo = upstream.ServerInfo,
                    ServerInstructions = upstream.ServerInstructions,
                    Capabilities = new ServerCapabilities { Tools = new ToolsCapability() },
                    Handlers = new McpServerHandlers
                    {
                        ListToolsHandler = async (request, token) => await upstream.ListToolsAsync(request.Params ?? new ListToolsRequestParams(), token),
                        CallToolHandler = async (request, token) => await upstream.CallToolAsync(request.Params!, token),
                    },
                };
                await using var server = McpServer.Create(new StdioServerTransport("hive"), options);
                await server.RunAsync(ct);
            }

            return 0;
        });
        return command;
    }
}
