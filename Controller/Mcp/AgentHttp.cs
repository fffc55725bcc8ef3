using System.Collections.Concurrent;
using System.Net;
using Hive.Controller.Sandboxes.Sbxd;

namespace Hive.Controller.Mcp;

/// <summary>
/// Plain HTTP/2 to each sandbox's hive-agent over its Unix socket (the same socket as its RPCs):
/// the MCP endpoint and the TCP tunnels behind <c>sandbox.url</c> are served there.
/// </summary>
internal sealed class AgentHttp(SbxdLauncher launcher) : IDisposable
{
    private readonly ConcurrentDictionary<string, HttpMessageInvoker> _clients = new(StringComparer.Ordinal);

    public HttpMessageInvoker For(string name) => _clients.GetOrAdd(name, static (n, l) =>
    {
        return new HttpMessageInvoker(new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            // A forwarder's client: what the agent answers goes back as is — no redirect followed,
            // no cookie kept for the next caller.
            AllowAutoRedirect = false,
            UseCookies = false,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            ConnectCallback = Hive.Wire.GrpcChannel.UnixSocketConnector(Path.Combine(l.StateDir(n), "agent.sock")),
        });
    }, launcher);

    /// <summary>A request to the agent: HTTP/2 with prior knowledge (the agent's socket speaks nothing else).</summary>
    public static HttpRequestMessage Request(HttpMethod method, string pathAndQuery) =>
        new(method, "http://hive-agent" + pathAndQuery) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

    public void Forget(string name)
    {
        if (_clients.TryRemove(name, out var client))
        {
            client.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var client in _clients.Values)
        {
            client.Dispose();
        }
    }
}
