using Hive.Protos.V1;
using Microsoft.AspNetCore.Builder;

namespace Hive.Wire.Tests;

/// <summary>hive.v1.Echo on a Hive.Wire server: a Unix socket and a loopback port.</summary>
internal sealed class EchoServer : IAsyncDisposable
{
    private readonly List<WebApplication> _apps = [];
    private readonly string _dir = Directory.CreateTempSubdirectory("hive-wire-").FullName;

    public string SocketPath => Path.Combine(_dir, "echo.sock");

    public int Port { get; private set; }

    /// <summary>Set when a handler observed its call being cancelled (deadline or client cancel).</summary>
    public TaskCompletionSource HandlerCancelled { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResetCancelled() => HandlerCancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<EchoServer> StartAsync()
    {
        var server = new EchoServer();
        foreach (var (listen, tcp) in new[] { (GrpcListen.UnixSocket(server.SocketPath), false), (GrpcListen.Loopback(), true) })
        {
            var app = GrpcServer.Create(listen);
            server.Map(app);
            await app.StartAsync();
            server._apps.Add(app);
            if (tcp)
            {
                server.Port = GrpcServer.GetLoopbackPort(app);
            }
        }

        return server;
    }

    private void Map(WebApplication app)
    {
        app.MapUnary<EchoRequest, EchoReply>("/hive.v1.Echo/Say", async (request, context) =>
        {
            if (request.DelayMs > 0)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(request.DelayMs), context.CancellationToken);
                }
                catch (OperationCanceledException)
                {
                    HandlerCancelled.TrySetResult();
                    throw;
                }
            }

            return request.Text == "boom" ? throw new InvalidOperationException("secret internals") : new EchoReply { Text = request.Text };
        });
        app.MapUnary<EchoRequest, EchoReply>("/hive.v1.Echo/Fail", (request, _) =>
            throw new RpcException(StatusCode.NotFound, request.Text));
        app.MapServerStreaming<EchoRequest, EchoReply>("/hive.v1.Echo/Count", async (request, writer, context) =>
        {
            for (var i = 0; i < request.Count; i++)
            {
                if (request.DelayMs == 7 && i == 3)
                {
                    throw new RpcException(StatusCode.Aborted, "stopped after 3");
                }

                await writer.WriteAsync(new EchoReply { Text = request.Text, Index = i }, context.CancellationToken);
            }
        });
        app.MapClientStreaming<EchoRequest, EchoReply>("/hive.v1.Echo/Collect", async (requests, context) =>
        {
            var text = new System.Text.StringBuilder();
            var n = 0;
            await foreach (var r in requests.WithCancellation(context.CancellationToken))
            {
                text.Append(r.Text);
                n++;
            }

            return new EchoReply { Text = text.Length > 1000 ? $"{text.Length} chars" : text.ToString(), Index = n };
        });
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        Directory.Delete(_dir, recursive: true);
    }
}
