using System.Net;
using Hive.Controller.Mcp;

namespace Hive.Controller.Ingress;

/// <summary>
/// HTTP/1.1 (and WebSocket) clients whose connections are agent tunnels: the URI's host names the
/// sandbox (<c>http://NAME.sandbox:PORT/</c>), so one pool serves every sandbox and keeps tunnels alive between requests.
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

    public static Uri Target(string sandbox, int port, string pathAndQuery, bool webSocket = false) =>
        new($"{(webSocket ? "ws" : "http")}://{sandbox}{HostSuffix}:{port}{pathAndQuery}");

    public void Dispose() => Client.Dispose();
}
