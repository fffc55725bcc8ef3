using System.Security.Authentication;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Hive.Protos.V1;
using Hive.SbxProxy.Http;

namespace Hive.SbxProxy.Tcp;

/// <summary>
/// Every TCP connection the sandbox opens arrives here (host iptables REDIRECT). The original
/// destination (SO_ORIGINAL_DST) must be a synthetic address the proxy's DNS handed out — that is
/// the only way a connection names a host; anything else (a literal IP, the host's ports, another
/// sandbox) is reset and audited. The first bytes decide the protocol: TLS (intercepted with the
/// sandbox's CA, SNI must name the same host), HTTP/1.x (every request decided), or raw TCP (only
/// where a rule names host and port).
/// </summary>
internal sealed class Interceptor(ProxyState state, IPEndPoint endpoint)
{
    /// <summary>Connections one sandbox may hold open through its proxy at once; more are reset (and audited).</summary>
    public const int MaxConnections = 4096;

    private const int SolIp = 0;
    private int _open;
    private const int SoOriginalDst = 80;
    private Socket? _listener;

    public void Start(CancellationToken stop)
    {
        _listener = AcceptLoop.Listen(endpoint, 1024);
        _ = Task.Run(() => AcceptLoop.RunAsync(_listener, client => HandleAsync(client, stop), stop), stop);
    }

    private async Task HandleAsync(Socket client, CancellationToken stop)
    {
        Interlocked.Increment(ref state.Counters.Connections);
        var open = Interlocked.Increment(ref _open);
        client.NoDelay = true;
        var keepSocket = false;
        try
        {
            var original = OriginalDestination(client);
            var ev = new NetEvent { Protocol = "tcp", Ip = original.Address.ToString(), Port = (uint)original.Port };
            if (!state.Audit.Healthy)
            {
                return;
            }

            if (open > MaxConnections)
            {
                ev.Error = $"more than {MaxConnections} connections open at once";
                ev.Rule = "connection limit";
                Deny(ev);
                return;
            }

            var host = state.Names.NameFor(original.Address);
            if (host is null)
            {
                ev.Error = $"direct connection to {original}: only names resolved through the sandbox's DNS can be reached";
                ev.Rule = "no name";
                Deny(ev);
                return;
            }

            ev.Host = host;
            var peer = state.Peers.Resolve(host);
            if (peer is not null)
            {
                // A peer is reached only on the ports it exposes to the group: everything else it
                // listens on (its agent's own servers included) stays its own.
                ev.Rule = $"network shared: group {state.Config.Group}";
                if (!peer.Expose.Contains(original.Port))
                {
                    ev.Error = $"port {original.Port} of {peer.Name} is not exposed to the group ({(peer.Expose.Count == 0 ? "it exposes no ports" : "it exposes " + string.Join(", ", peer.Expose))})";
                    Deny(ev);
                    return;
                }

                ev.Rule += $", exposed port {original.Port}";
                keepSocket = true;
                await RelayRawAsync(client, new IPEndPoint(peer.Address, original.Port), ev, [], stop);
                return;
            }

            var hostDecision = Peers.IsReserved(host) ? new Hive.Policy.Net.EgressDecision(false, "not a member of this sandbox's network group") : state.Policy.DecideHost(host);
            if (!hostDecision.Allowed)
            {
                ev.Rule = hostDecision.Rule;
                ev.Error = $"{host} is not allowed";
                Deny(ev);
                return;
            }

            // Sniff. A server-speaks-first protocol sends nothing: after a second that is raw TCP.
            var buffer = new byte[16 * 1024 + 5];
            var first = client.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, stop).AsTask();
            if (await Task.WhenAny(first, Task.Delay(TimeSpan.FromSeconds(1), stop)) != first)
            {
                var raw = state.Policy.DecideConnection(host, original.Port, raw: true);
                if (raw.Allowed)
                {
                    keepSocket = true;
                    ev.Rule = raw.Rule;
                    await RelayRawAsync(client, new IPEndPoint(IPAddress.None, original.Port), ev, [], stop, pendingFirst: first, pendingBuffer: buffer);
                    return;
                }

                if (await Task.WhenAny(first, Task.Delay(TimeSpan.FromSeconds(30), stop)) != first)
                {
                    return;
                }
            }

            var count = await first;
            if (count == 0)
            {
                return;
            }

            if (count >= 3 && buffer[0] == 0x16 && buffer[1] == 3)
            {
                keepSocket = true;
                await HandleTlsAsync(client, host, original, buffer, count, ev, stop);
            }
            else if (LooksLikeHttp(buffer.AsSpan(0, count)))
            {
                var decision = state.Policy.DecideConnection(host, original.Port, raw: false);
                if (!decision.Allowed)
                {
                    ev.Protocol = "http";
                    ev.Rule = decision.Rule;
                    ev.Error = $"{host}:{original.Port} is not allowed";
                    Deny(ev);
                    return;
                }

                ev.Protocol = "http";
                ev.Rule = decision.Rule;
                if (!Allow(ev))
                {
                    return;
                }

                keepSocket = true;
                var reader = new HttpReader(new NetworkStream(client, ownsSocket: true));
                reader.Prepend(buffer.AsSpan(0, count));
                await using var session = new HttpSession(state, host, original.Port, tls: false, reader);
                await session.RunAsync(stop);
            }
            else
            {
                var raw = state.Policy.DecideConnection(host, original.Port, raw: true);
                ev.Rule = raw.Rule;
                if (!raw.Allowed)
                {
                    ev.Error = raw.Rule;
                    Deny(ev);
                    return;
                }

                keepSocket = true;
                await RelayRawAsync(client, new IPEndPoint(IPAddress.None, original.Port), ev, buffer.AsSpan(0, count).ToArray(), stop);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or AuthenticationException)
        {
        }
        catch (Exception ex)
        {
            // A bug must cost this connection, never the proxy (and never let traffic through).
            Console.Error.WriteLine($"hive-sbxproxy: connection handler failed: {ex}");
        }
        finally
        {
            Interlocked.Decrement(ref _open);
            if (!keepSocket)
            {
                Reset(client);
            }
            else
            {
                client.Dispose();
            }
        }
    }

    private async Task HandleTlsAsync(Socket client, string host, IPEndPoint original, byte[] buffer, int count, NetEvent ev, CancellationToken stop)
    {
        ev.Protocol = "tls";
        // The whole ClientHello record, to read its SNI.
        var recordLength = 5 + BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(3));
        while (count < Math.Min(recordLength, buffer.Length))
        {
            var n = await client.ReceiveAsync(buffer.AsMemory(count), SocketFlags.None, stop);
            if (n == 0)
            {
                return;
            }

            count += n;
        }

        var sni = ClientHello.ServerName(buffer.AsSpan(0, count));
        if (sni is not null && !sni.TrimEnd('.').Equals(host, StringComparison.OrdinalIgnoreCase))
        {
            ev.Error = $"TLS server name '{sni}' does not match the connection's destination {host}";
            ev.Rule = "sni-mismatch";
            DenyTls(client, ev);
            return;
        }

        var decision = state.Policy.DecideConnection(host, original.Port, raw: false);
        if (!decision.Allowed)
        {
            ev.Rule = decision.Rule;
            ev.Error = $"{host}:{original.Port} is not allowed";
            DenyTls(client, ev);
            return;
        }

        ev.Rule = decision.Rule;
        if (!Allow(ev))
        {
            Reset(client);
            return;
        }

        var reader = new HttpReader(new NetworkStream(client, ownsSocket: true));
        reader.Prepend(buffer.AsSpan(0, count));
        var tls = new SslStream(new ReaderStream(reader), leaveInnerStreamOpen: false);
        await using (tls)
        {
            using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(stop))
            {
                handshake.CancelAfter(TimeSpan.FromSeconds(15));
                await tls.AuthenticateAsServerAsync(
                    new SslServerAuthenticationOptions
                    {
                        ServerCertificateContext = state.Ca.ContextFor(host),
                        ApplicationProtocols = [SslApplicationProtocol.Http11],
                        ClientCertificateRequired = false,
                    },
                    handshake.Token);
            }

            var decrypted = new HttpReader(tls);
            // Anything but HTTP inside TLS is refused (the same rule as raw TCP would need a port rule;
            // intercepted TLS only carries HTTP here).
            await using var session = new HttpSession(state, host, original.Port, tls: true, decrypted);
            await session.RunAsync(stop);
        }
    }

    /// <summary>Raw TCP (or a shared-group peer): connect and copy both ways; one event when it ends.</summary>
    private async Task RelayRawAsync(Socket client, IPEndPoint peerOrNone, NetEvent ev, byte[] initial, CancellationToken stop, Task<int>? pendingFirst = null, byte[]? pendingBuffer = null)
    {
        var started = Stopwatch.GetTimestamp();
        Socket upstream;
        try
        {
            if (peerOrNone.Address.Equals(IPAddress.None))
            {
                (upstream, var remote) = await state.Upstream.ConnectAsync(ev.Host, peerOrNone.Port, stop);
                ev.Ip = remote.Address.ToString();
            }
            else
            {
                upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                await upstream.ConnectAsync(peerOrNone, timeout.Token);
                ev.Ip = peerOrNone.Address.ToString();
            }
        }
        catch (UpstreamRefusedException ex)
        {
            ev.Error = ex.Message;
            ev.Rule = "upstream address";
            Deny(ev);
            Reset(client);
            return;
        }
        catch (Exception ex) when (ex is UpstreamException or SocketException or OperationCanceledException)
        {
            Interlocked.Increment(ref state.Counters.UpstreamErrors);
            ev.Error = ex.Message;
            state.Audit.Net("net.tcp", true, ev);
            Reset(client);
            return;
        }

        if (!Allow(ev.Clone()))
        {
            upstream.Dispose();
            Reset(client);
            return;
        }

        await using var upstreamStream = new NetworkStream(upstream, ownsSocket: true);
        var clientReader = new HttpReader(new NetworkStream(client, ownsSocket: false));
        clientReader.Prepend(initial);
        Task<ReadOnlyMemory<byte>>? firstUp = pendingFirst is null || pendingBuffer is null
            ? null
            : pendingFirst.ContinueWith(t => (ReadOnlyMemory<byte>)pendingBuffer.AsMemory(0, t.IsCompletedSuccessfully ? t.Result : 0), TaskScheduler.Default);
        var (up, down) = await Splice.RunAsync(clientReader, clientReader.Stream, new HttpReader(upstreamStream), upstreamStream, stop, firstUp);
        ev.BytesOut = up;
        ev.BytesIn = down;
        ev.DurationUs = (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;
        Interlocked.Add(ref state.Counters.BytesOut, up);
        Interlocked.Add(ref state.Counters.BytesIn, down);
        state.Audit.Net("net.tcp", true, ev);
    }

    /// <summary>An allowed connection, on record before anything is forwarded; false = audit unavailable (refuse).</summary>
    private bool Allow(NetEvent ev) => state.Audit.Net("net.connect", true, ev.Clone());

    private void Deny(NetEvent ev)
    {
        Interlocked.Increment(ref state.Counters.Denied);
        state.Audit.Net("net.connect", false, ev);
    }

    /// <summary>A refused TLS connection gets a handshake_failure alert, then a reset.</summary>
    private void DenyTls(Socket client, NetEvent ev)
    {
        Deny(ev);
        try
        {
            client.Send([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
        }
        catch (SocketException)
        {
        }
    }

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }

        socket.Dispose();
    }

    private static bool LooksLikeHttp(ReadOnlySpan<byte> data)
    {
        var space = data.IndexOf((byte)' ');
        if (space is < 3 or > 10)
        {
            return false;
        }

        foreach (var b in data[..space])
        {
            if (b is < (byte)'A' or > (byte)'Z')
            {
                return false;
            }
        }

        return true;
    }

    internal static IPEndPoint OriginalDestination(Socket socket)
    {
        Span<byte> address = stackalloc byte[16];
        var length = socket.GetRawSocketOption(SolIp, SoOriginalDst, address);
        if (length < 8)
        {
            throw new SocketException((int)SocketError.AddressNotAvailable);
        }

        var port = BinaryPrimitives.ReadUInt16BigEndian(address[2..]);
        return new IPEndPoint(new IPAddress(address.Slice(4, 4)), port);
    }
}
