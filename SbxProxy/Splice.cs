using Hive.SbxProxy.Http;

namespace Hive.SbxProxy;

/// <summary>Copies both directions of a connection pair until both ends are done (raw TCP, WebSocket after the upgrade).</summary>
internal static class Splice
{
    /// <summary>
    /// Returns (bytes sandbox -> upstream, bytes upstream -> sandbox). <paramref name="firstUp"/>: bytes
    /// of a read still in flight on the sandbox side (sniffing), sent upstream before anything else;
    /// empty means the sandbox already closed its side.
    /// </summary>
    public static async Task<(long Up, long Down)> RunAsync(HttpReader sandboxReader, Stream sandbox, HttpReader upstreamReader, Stream upstream, CancellationToken cancellationToken, Task<ReadOnlyMemory<byte>>? firstUp = null)
    {
        // Each direction ends on its own (EOF is passed on as a half-close), so protocols that keep
        // talking after one side finished sending still work.
        var up = CopyAsync(sandboxReader, upstream, cancellationToken, firstUp);
        var down = CopyAsync(upstreamReader, sandbox, cancellationToken, null);
        await Task.WhenAll(up, down);
        return (await up, await down);
    }

    private static async Task<long> CopyAsync(HttpReader from, Stream to, CancellationToken cancellationToken, Task<ReadOnlyMemory<byte>>? first)
    {
        long total = 0;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(32 * 1024);
        try
        {
            var ended = false;
            if (first is not null)
            {
                var data = await first;
                ended = data.Length == 0;
                if (!ended)
                {
                    await to.WriteAsync(data, cancellationToken);
                    await to.FlushAsync(cancellationToken);
                    total += data.Length;
                }
            }

            int n;
            while (!ended && (n = await from.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
                await to.FlushAsync(cancellationToken);
                total += n;
            }

            if (to is System.Net.Sockets.NetworkStream network)
            {
                network.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            }
            else if (to is System.Net.Security.SslStream tls)
            {
                await tls.ShutdownAsync();
            }
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }

        return total;
    }
}
