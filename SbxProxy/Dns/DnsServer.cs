using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Hive.Policy.Net;
using Hive.Protos.V1;
using Hive.SbxProxy.Audit;

namespace Hive.SbxProxy.Dns;

/// <summary>
/// The sandbox's only resolver (UDP and TCP; the host's iptables send port 53 here). Nothing is
/// forwarded: a name a rule allows gets its synthetic address, IPv6 and other record types get an
/// empty answer, everything else NXDOMAIN — so no query, and nothing tunnelled in one, leaves the
/// host. Every query is a <c>net.dns</c> event.
/// </summary>
internal sealed class DnsServer(ProxyState state, IPEndPoint endpoint)
{
    private Socket? _udp;
    private Socket? _tcp;

    public void Start(CancellationToken stop)
    {
        _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _udp.Bind(endpoint);
        _tcp = Tcp.AcceptLoop.Listen(endpoint, 64);
        _ = Task.Run(() => UdpLoopAsync(_udp, stop), stop);
        _ = Task.Run(() => Tcp.AcceptLoop.RunAsync(_tcp, client => ServeTcpAsync(client, stop), stop), stop);
    }

    private async Task UdpLoopAsync(Socket socket, CancellationToken stop)
    {
        var buffer = new byte[4096];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            var response = Handle(buffer.AsSpan(0, received.ReceivedBytes), "udp");
            if (response is not null)
            {
                try
                {
                    await socket.SendToAsync(response, SocketFlags.None, received.RemoteEndPoint, stop);
                }
                catch (SocketException)
                {
                }
            }
        }
    }

    /// <summary>DNS over TCP: length-prefixed queries on one connection, 10 s in all.</summary>
    private async Task ServeTcpAsync(Socket client, CancellationToken stop)
    {
        using var c = client;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        var length = new byte[2];
        try
        {
            while (await ReadExactlyAsync(c, length, timeout.Token))
            {
                var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
                if (!await ReadExactlyAsync(c, query, timeout.Token))
                {
                    return;
                }

                var response = Handle(query, "tcp");
                if (response is null)
                {
                    return;
                }

                var framed = new byte[response.Length + 2];
                BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)response.Length);
                response.CopyTo(framed, 2);
                await c.SendAsync(framed, SocketFlags.None, timeout.Token);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
        }
    }

    private static async Task<bool> ReadExactlyAsync(Socket socket, byte[] buffer, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    /// <summary>Decides and answers one query; null = no answer at all (not a query, or audit unavailable).</summary>
    internal byte[]? Handle(ReadOnlySpan<byte> query, string transport)
    {
        try
        {
            return Decide(query, transport);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // E.g. the names file cannot be written: no answer is safer than one that is not on record.
            Console.Error.WriteLine("hive-sbxproxy: DNS query not answered: " + ex.Message);
            return null;
        }
    }

    private byte[]? Decide(ReadOnlySpan<byte> query, string transport)
    {
        Interlocked.Increment(ref state.Counters.DnsQueries);
        var question = DnsQuestion.Parse(query);
        if (question is not { } q)
        {
            return state.Audit.Net("net.dns", false, new NetEvent { Protocol = "dns", Error = $"malformed query over {transport}" }) ? DnsQuestion.FormatError(query) : null;
        }

        if (!state.Audit.Healthy)
        {
            // Not on record, so not answered: REFUSED (the sandbox's event budget is exhausted).
            return q.Answer(query, DnsQuestion.Refused, null);
        }

        var type = DnsQuestion.TypeName(q.Type);
        var body = new NetEvent { Protocol = "dns", Host = q.AsAsked, DnsType = type };
        if ((q.Flags & 0x7800) != 0 || q.Class != 1)
        {
            body.Error = "only standard IN queries are answered";
            return state.Audit.Net("net.dns", false, body) ? q.Answer(query, DnsQuestion.NotImp, null) : null;
        }

        var peer = state.Peers.Resolve(q.Name);
        var decision = peer is not null
            ? new EgressDecision(true, $"network shared: group {state.Config.Group}")
            : Peers.IsReserved(q.Name) ? new EgressDecision(false, "not a member of this sandbox's network group")
            : EgressPolicy.IsValidHostName(q.Name) ? state.Policy.DecideHost(q.Name) : new EgressDecision(false, "not a valid host name");
        body.Rule = decision.Rule;
        if (!decision.Allowed)
        {
            return state.Audit.Net("net.dns", false, body) ? q.Answer(query, DnsQuestion.NxDomain, null) : null;
        }

        byte[]? address = null;
        if (q.Type == DnsQuestion.TypeA)
        {
            var synthetic = state.Names.AddressFor(q.Name);
            if (synthetic is null)
            {
                body.Error = "synthetic address pool exhausted";
                return state.Audit.Net("net.dns", false, body) ? q.Answer(query, DnsQuestion.ServFail, null) : null;
            }

            address = synthetic.GetAddressBytes();
            body.Answers.Add(synthetic.ToString());

            // A connection usually follows the answer within a millisecond: mint the name's TLS
            // certificate now, off the connection's path (it is cached; minting twice is harmless).
            if (peer is null)
            {
                var name = q.Name;
                _ = Task.Run(() => state.Ca.ContextFor(name));
            }
        }

        // AAAA and every other type: the name exists, with no records of that type (no IPv6 here).
        return state.Audit.Net("net.dns", true, body) ? q.Answer(query, DnsQuestion.NoError, address) : null;
    }
}
