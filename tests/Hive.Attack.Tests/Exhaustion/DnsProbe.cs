namespace Hive.Attack.Tests.Exhaustion;

/// <summary>
/// A DNS client for inside a sandbox: exactly one UDP query per name to the sandbox's resolver
/// (no retries, no search domains, no AAAA), so the events can be counted against the queries.
/// </summary>
internal static class DnsProbe
{
    /// <summary>
    /// Python: <c>python3 /tmp/dns.py NAME…</c> or <c>--flood TAG N</c> (N random names under
    /// <c>flood.test</c>); prints one JSON object: rcode → how many answers had it, and the addresses.
    /// </summary>
    public const string Script = """
        import json, random, socket, struct, sys
        ns = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(20)
        if sys.argv[1] == '--flood':
            names = ['%s-%d-%08x.flood.test' % (sys.argv[2], i, random.getrandbits(32)) for i in range(int(sys.argv[3]))]
        else:
            names = sys.argv[1:]
        codes, addresses = {}, []
        for i, name in enumerate(names):
            qid = i & 0xFFFF
            q = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\0' + struct.pack('>HH', 1, 1)
            s.sendto(q, (ns, 53))
            while True:
                try:
                    data, _ = s.recvfrom(4096)
                except socket.timeout:
                    data = None
                    break
                if struct.unpack('>H', data[:2])[0] == qid:
                    break
            code = 'timeout' if data is None else str(data[3] & 0xF)
            codes[code] = codes.get(code, 0) + 1
            if data is not None and code == '0' and struct.unpack('>H', data[6:8])[0] > 0:
                addresses.append('.'.join(str(b) for b in data[-4:]))
        print(json.dumps({'codes': codes, 'addresses': addresses}))
        """;

    /// <summary>Shell lines that write the script to /tmp/dns.py.</summary>
    public static string Install => $"cat > /tmp/dns.py <<'DNS_EOF'\n{Script}\nDNS_EOF";
}
