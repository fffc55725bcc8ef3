using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Hive.Agent.Mcp;

/// <summary>
/// <c>POST /tunnel/{port}</c> on the agent's socket: a full-duplex HTTP/2 stream spliced to TCP
/// 127.0.0.1:port inside the sandbox. This is how <c>sandbox.url</c> reaches a server in the
/// sandbox whatever its network mode — through the agent, never through the network.
/// </summary>
internal static class Tunnel
{
    public static void Map(IEndpointRouteBuilder app) =>
        app.MapPost("/tunnel/{port:int}", async (int port, HttpContext http) =>
        {
            if (port is < 1 or > 65535)
            {
                http.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), http.RequestAborted);
            }
            catch (SocketException ex)
            {
                http.Response.StatusCode = StatusCodes.Status502BadGateway;
                await http.Response.WriteAsync($"nothing is listening on port {port} inside the sandbox ({ex.SocketErrorCode})", http.RequestAborted);
                return;
            }

            http.Response.StatusCode = StatusCodes.Status200OK;
            await http.Response.StartAsync(http.RequestAborted);
            await using var tcp = new NetworkStream(socket, ownsSocket: false);
            using var stopUp = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
            var up = Task.Run(async () =>
            {
                try
                {
                    await http.Request.Body.CopyToAsync(tcp, stopUp.Token);
                    socket.Shutdown(SocketShutdown.Send); // the client is done sending: pass the half-close on
                }
                catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    // The server side ended first, or the client went away.
                }
            });
            var down = Task.Run(async () =>
            {
                var buffer = new byte[32 * 1024];
                int read;
                while ((read = await tcp.ReadAsync(buffer, http.RequestAborted)) > 0)
                {
                    await http.Response.Body.WriteAsync(buffer.AsMemory(0, read), http.RequestAborted);
                    await http.Response.Body.FlushAsync(http.RequestAborted);
                }
            });
            try
            {
                // The response ends when the server closes its side (an HTTP/1.0 reply, a closed WebSocket);
                // then nothing more can be delivered upwards either.
                await down;
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException)
            {
                // Either side went away: the stream ends.
            }

            await stopUp.CancelAsync();
            await up;
        });
}
