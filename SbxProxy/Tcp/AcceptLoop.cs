using System.Net;
using System.Net.Sockets;

namespace Hive.SbxProxy.Tcp;

/// <summary>The proxy's TCP listeners (connections and DNS over TCP): bind, then hand every accepted socket to its handler.</summary>
internal static class AcceptLoop
{
    public static Socket Listen(IPEndPoint endpoint, int backlog)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(endpoint);
        listener.Listen(backlog);
        return listener;
    }

    /// <summary>Accepts until <paramref name="stop"/>; each connection runs on its own task.</summary>
    public static async Task RunAsync(Socket listener, Func<Socket, Task> handle, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            _ = Task.Run(() => handle(client), stop);
        }
    }
}
