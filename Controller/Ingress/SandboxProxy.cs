using System.Net;
using Hive.Controller.Mcp;

namespace Hive.Controller.Ingress;

/// <summary>
/// The HTTP/1.1 client ingress is forwarded through (by YARP, WebSocket upgrades included): every
/// connection is an agent tunnel (<see cref="TunnelStream"/>, the sandbox's agent socket), and the
/// URI's host names the sandbox (<c>http://NAME.sandbox:PORT/</c>), so one pool serves every
/// sandbox and keeps tunnels alive between requests.
/// </summary>
internal sealed class SandboxProxy : IDisposable
{
    public const string HostSuffix = ".sandbox";

    public SandboxProxy(AgentHttp agents)
    {
        Handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectCallback = (context, ct) => new ValueTask<Stream>(TunnelStream.OpenAsync(agents.For(context.DnsEndPoint.Host[..^HostSuffix.Length]), context.DnsEndPoint.Port, ct)),
        };
        Client = new HttpMessageInvoker(Handler);
    }

    public SocketsHttpHandler Handler { get; }

    public HttpMessageInvoker Client { get; }

    /// <summary>The forwarder's destination for a port of a sandbox: the host names the tunnel the connection goes through.</summary>
    public static string Prefix(string sandbox, int port) => $"http://{sandbox}{HostSuffix}:{port}";

    public void Dispose() => Client.Dispose();
}
