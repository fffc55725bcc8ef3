using System.Net;
using System.Net.Sockets;

namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// Raw packets from a networked sandbox. The sandbox has no CAP_NET_RAW (and the seccomp socket
/// filter refuses packet sockets): its raw sockets fail with EPERM. Behind that, what a sandbox
/// sends still arrives on the host end of its veth, where only TCP to SbxProxy and DNS to its
/// resolver are let in: shown by a host process with CAP_NET_RAW in the sandbox's network namespace
/// (<c>ip netns exec</c>), standing for a sandbox that got raw packets out anyway, hand-crafting IP
/// packets and whole Ethernet frames past the namespace's own stack. The listener is a UDP socket
/// this test binds on that host end; a DNS query for a fresh name, sent the same raw way right after,
/// proves the packets do reach the host (its net.dns event is on record) before the listener is checked.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class RawSocketTests
{
    /// <summary>udp(src_port, dst_port, payload) and dns_query(name) as bytes; ip_header(src, dst, length) with its checksum.</summary>
    private const string Packets = """
        def udp(sport, dport, payload):
            return struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload

        def dns_query(qname):
            labels = b''.join(bytes([len(p)]) + p.encode() for p in qname.split('.'))
            return struct.pack('!HHHHHH', 0x4869, 0x0100, 1, 0, 0, 0) + labels + b'\0' + struct.pack('!HH', 1, 1)

        def ip_header(src, dst, length):
            h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + length, 0x4869, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
            s = sum(struct.unpack('!10H', h))
            s = (s & 0xffff) + (s >> 16)
            s = (s & 0xffff) + (s >> 16)
            return h[:10] + struct.pack('!H', ~s & 0xffff) + h[12:]
        """;

    /// <summary>The raw socket of <paramref name="script"/> as the sandbox itself tries it: EPERM.</summary>
    private static async Task AssertRefusedInsideAsync(string script) =>
        Assert.That(await KernelSandboxes.PythonAsync(KernelSandboxes.Networked, script), Is.EqualTo("EPERM"), "from inside the sandbox (no CAP_NET_RAW)");

    /// <summary>Runs <paramref name="script"/> (after <see cref="Packets"/>) as host root in the sandbox's network namespace.</summary>
    private static Task<string> FromTheSandboxNetworkAsync(string script) =>
        KernelSandboxes.PythonAsHostRootInsideAsync(Packets + "\n" + script, "ip", "netns", "exec", "hive-" + KernelSandboxes.Networked);

    private static (Socket Listener, int Port) Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        listener.Bind(new IPEndPoint(IPAddress.Parse(KernelSandboxes.NetworkedHostIp), 0));
        return (listener, ((IPEndPoint)listener.LocalEndPoint!).Port);
    }

    /// <summary>Waits for the control query's net.dns event, then asserts nothing reached the listener.</summary>
    private static async Task AssertNothingArrivedAsync(Socket listener, string control)
    {
        static bool Asked(System.Text.Json.JsonElement e, string name) => e.TryGetProperty("host", out var host) && host.GetString() == name;
        var events = await KernelSandboxes.Controller.WaitForEventsAsync(KernelSandboxes.Networked, e => e.Any(x => Asked(x, control)), kind: "net.dns");
        Assert.That(events.Any(x => Asked(x, control)), Is.True, "the raw control query reached the host's resolver (so the packets before it left the sandbox)");
        Assert.That(listener.Poll(TimeSpan.FromSeconds(1), SelectMode.SelectRead), Is.False, "a host listener received a raw packet from the sandbox");
    }

    [Test]
    [Defence("no CAP_NET_RAW; behind it, the host-side filter on the veth: only TCP to SbxProxy and DNS to its resolver; other UDP dropped")]
    public async Task A_raw_udp_packet_reaches_no_host_listener()
    {
        await AssertRefusedInsideAsync("print(sc(41, 2, 3, 17))");
        var (listener, port) = Listen();
        using (listener)
        {
            var control = Names.Unique("rawudp") + ".example";
            var outcome = await FromTheSandboxNetworkAsync($"""
                s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
                for _ in range(3):
                    s.sendto(udp(40000, {port}, b'hive-raw-udp'), ('{KernelSandboxes.NetworkedHostIp}', 0))
                s.sendto(udp(40001, 53, dns_query('{control}')), ('{KernelSandboxes.NetworkedHostIp}', 0))
                print('sent')
                """);
            Assert.That(outcome, Is.EqualTo("sent"), "with CAP_NET_RAW the raw socket itself works");
            await AssertNothingArrivedAsync(listener, control);
        }
    }

    [Test]
    [Defence("no CAP_NET_RAW, no packet sockets (seccomp); behind them, the host-side filter on the veth: it sees every packet that reaches the host, however it was made")]
    public async Task A_hand_made_ethernet_frame_reaches_no_host_listener()
    {
        await AssertRefusedInsideAsync("print(sc(41, 17, 3, 0x300))");
        var (listener, port) = Listen();
        using (listener)
        {
            var control = Names.Unique("rawframe") + ".example";
            var warmup = Names.Unique("warmup") + ".example";
            var outcome = await FromTheSandboxNetworkAsync($$"""
                host, me = '{{KernelSandboxes.NetworkedHostIp}}', '{{KernelSandboxes.NetworkedIp}}'
                w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                w.settimeout(5)
                w.sendto(dns_query('{{warmup}}'), (host, 53))
                try:
                    w.recv(512)
                except OSError:
                    pass
                arp = [l.split() for l in open('/proc/net/arp').read().splitlines()[1:]]
                dev, host_mac = [(f[5], f[3]) for f in arp if f[0] == host][0]
                my_mac = open(f'/sys/class/net/{dev}/address').read().strip()
                eth = bytes.fromhex(host_mac.replace(':', '')) + bytes.fromhex(my_mac.replace(':', '')) + b'\x08\x00'
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                s.bind((dev, 0))
                payload = udp(40002, {{port}}, b'hive-raw-frame')
                for _ in range(3):
                    s.send(eth + ip_header(me, host, len(payload)) + payload)
                query = udp(40003, 53, dns_query('{{control}}'))
                s.send(eth + ip_header(me, host, len(query)) + query)
                print('sent')
                """);
            Assert.That(outcome, Is.EqualTo("sent"), "with CAP_NET_RAW AF_PACKET works");
            await AssertNothingArrivedAsync(listener, control);
        }
    }

    [Test]
    [Defence("no CAP_NET_RAW; behind it, the host-side filter on the veth: ICMP dropped")]
    public async Task An_icmp_echo_to_the_host_gets_no_answer()
    {
        await AssertRefusedInsideAsync("print(sc(41, 2, 3, 1))");
        var outcome = await FromTheSandboxNetworkAsync($"""
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            body = struct.pack('!BBHHH', 8, 0, 0, 0x4869, 1) + b'hive-ping!'
            c = sum(struct.unpack('!%dH' % (len(body) // 2), body))
            c = (c & 0xffff) + (c >> 16)
            c = (c & 0xffff) + (c >> 16)
            s.sendto(body[:2] + struct.pack('!H', ~c & 0xffff) + body[4:], ('{KernelSandboxes.NetworkedHostIp}', 0))
            s.settimeout(3)
            try:
                while True:
                    data, addr = s.recvfrom(2048)
                    if addr[0] == '{KernelSandboxes.NetworkedHostIp}' and data[20] == 0:
                        print('answered')
                        break
            except socket.timeout:
                print('no answer')
            """);
        Assert.That(outcome, Is.EqualTo("no answer"));
    }
}
