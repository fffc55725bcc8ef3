using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;

namespace Hive.Attack.Tests.Net;

/// <summary>
/// Attempts from inside a sandbox (root in its own shell) to reach what its egress must never
/// reach: other sandboxes, private/link-local/metadata addresses, a peer's unexposed ports, secrets
/// sent elsewhere or in clear text, requests smuggled past the rules, forged names.
/// </summary>
/// <remarks>
/// One Controller and two sandboxes for the whole fixture. The Controller maps test names with
/// <c>--egress-resolve</c>: <c>api/sec/narrow.attack.test</c> to the fixture's upstream on 127.0.0.1
/// (the one address opened with <c>--egress-allow-cidr 127.0.0.1/32</c>), <c>victim.attack.test</c>
/// to the victim sandbox's own address, and <c>*.inward.attack.test</c> to private, CGNAT,
/// link-local, metadata, ULA and embedded-IPv4 addresses — which a <see cref="PacketGuard"/> keeps
/// anything from reaching and counts. The victim (network shared, group "atk", exposes 8000) runs
/// HTTP servers on 8000 and 8001; the attacker is in the same group, with egress rules.
/// </remarks>
[TestFixture]
[Category(From.Inside)]
[CancelAfter(900_000)]
public sealed partial class EgressFromInsideTests
{
    private const string Group = "atk";
    private static readonly string[] UpstreamNames = ["api.attack.test", "sec.attack.test", "narrow.attack.test", "other.attack.test"];

    private readonly string _secret = "sk-atk-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
    private EgressUpstream _upstream = null!;
    private PacketGuard _guard = null!;
    private ControllerProcess _controller = null!;
    private string _victim = null!;
    private string _victimIp = null!;
    private string _attacker = null!;
    private string _attackerHostIp = null!;

    private static IPAddress VictimAddress => NetPools.SandboxAddress(0);

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _upstream = await EgressUpstream.StartAsync(UpstreamNames, _secret);
        _guard = await PacketGuard.InstallAsync(InwardTargets.Select(t => Guarded((string)t[1])).Append(IPAddress.Parse("10.0.0.2")));
        var resolve = UpstreamNames.Select(n => $"{n}=127.0.0.1")
            .Append($"victim.attack.test={VictimAddress}")
            .Append("rawinner.attack.test=10.0.0.2")
            .Concat(InwardTargets.Select(t => $"{t[0]}.inward.attack.test={t[1]}"));
        _controller = await ControllerProcess.StartAsync(
            null, null,
            "--egress-ca", _upstream.CaFile,
            "--egress-resolve", string.Join(',', resolve),
            "--egress-allow-cidr", "127.0.0.1/32");

        await PutSecretAsync("atk-tok", new { value = _secret, hosts = new[] { "sec.attack.test" } }, 201);
        await PutSecretAsync("atk-narrow", new { value = _secret, hosts = new[] { "narrow.attack.test" } }, 201);

        // The victim first: in a fresh data dir it holds the pool's first lease, the address victim.attack.test names.
        _victim = Names.Unique("victim");
        var victim = await _controller.CreateAsync(new { name = _victim, network = "shared", group = Group, expose = new[] { 8000 } });
        _victimIp = victim.GetProperty("network").GetProperty("ip").GetString()!;
        Assert.That(_victimIp, Is.EqualTo(VictimAddress.ToString()), "the victim holds the pool's first address (fresh data dir)");
        await ShAsync(_victim, """
            for port in 8000 8001 8080; do (setsid python3 -m http.server $port --bind 0.0.0.0 >/dev/null 2>&1 &); done
            for port in 8000 8001 8080; do for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done; done
            """);

        _attacker = Names.Unique("attacker");
        var attacker = await _controller.CreateAsync(new
        {
            name = _attacker,
            network = "shared",
            group = Group,
            egress = new
            {
                deny = new object[] { new { host = "api.attack.test", paths = new[] { "/admin/**" } } },
                allow = new object[]
                {
                    new { host = "sec.attack.test", inject = new { headers = new Dictionary<string, string> { ["Authorization"] = "Bearer ${secret:atk-tok}" } } },
                    new { host = "narrow.attack.test", inject = new { headers = new Dictionary<string, string> { ["Authorization"] = "Bearer ${secret:atk-narrow}" } } },
                    new { host = "rawinner.attack.test", ports = new[] { 5432 } },
                    new { host = "*.attack.test" },
                },
            },
        });
        var ip = IPAddress.Parse(attacker.GetProperty("network").GetProperty("ip").GetString()!).GetAddressBytes();
        ip[3]--;
        _attackerHostIp = new IPAddress(ip).ToString();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_controller is not null)
        {
            await _controller.DisposeAsync();
        }

        if (_guard is not null)
        {
            await _guard.DisposeAsync();
        }

        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }
    }

    /// <summary>The address a packet to <paramref name="target"/> would carry (an IPv4-mapped address goes out as IPv4).</summary>
    private static IPAddress Guarded(string target)
    {
        var address = IPAddress.Parse(target);
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    private async Task PutSecretAsync(string name, object body, int expectStatus)
    {
        using var put = await _controller.Http.PutAsJsonAsync($"/api/v1/secrets/{name}", body);
        Assert.That((int)put.StatusCode, Is.EqualTo(expectStatus), await put.Content.ReadAsStringAsync());
    }

    private async Task<string> ShAsync(string name, string script)
    {
        var result = await _controller.ExecAsync(name, script, timeout: 120);
        var stdout = result.GetProperty("stdout").GetString()!;
        Assert.That(result.GetProperty("exit_code").GetInt32(), Is.EqualTo(0), stdout + "\n" + result.GetProperty("stderr").GetString());
        return stdout;
    }

    /// <summary>curl from the attacker: "status rc=N" and the body.</summary>
    private async Task<(string Outcome, string Body)> CurlAsync(string args)
    {
        var output = await ShAsync(_attacker, $"code=$(curl -s -o /tmp/body -w '%{{http_code}}' -m 10 {args}); rc=$?; echo \"$code rc=$rc\"; cat /tmp/body 2>/dev/null; rm -f /tmp/body");
        var newline = output.IndexOf('\n', StringComparison.Ordinal);
        return (output[..newline], output[(newline + 1)..]);
    }

    /// <summary>Runs a Python script in the attacker; returns its last stdout line as JSON.</summary>
    private async Task<JsonElement> PythonAsync(string script)
    {
        var output = await ShAsync(_attacker, "python3 - <<'EOF'\n" + script + "\nEOF");
        return JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement.Clone();
    }

    /// <summary>Python helper: one raw HTTP exchange over plain TCP; returns the status line and the body (or null when the proxy closed first).</summary>
    private const string RawHttp = """
        import json, socket
        def read_response(s):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    return None
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            return {"status": head.split(b"\r\n")[0].decode("latin-1"), "body": body[:length].decode("latin-1")}
        def exchange(host, port, raw, then=None):
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(raw)
            first = read_response(s)
            second = None
            if then is not None:
                try:
                    s.sendall(then)
                    second = read_response(s)
                except OSError:
                    second = None
            s.close()
            return {"first": first, "second": second}
        """;

    /// <summary>Waits for an attacker event matching <paramref name="match"/> (kind prefix <paramref name="kind"/>, decision deny).</summary>
    private async Task<JsonElement> DeniedAsync(string kind, Func<JsonElement, bool> match)
    {
        var events = await _controller.WaitForEventsAsync(_attacker, e => e.Any(match), kind: kind, decision: "deny");
        var found = events.Where(match).ToList();
        Assert.That(found, Is.Not.Empty, $"a {kind} deny event; seen:\n{string.Join('\n', events.TakeLast(10).Select(e => e.GetRawText()))}");
        return found[^1];
    }

    private static string Text(JsonElement e, string field) => e.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : string.Empty;
}
