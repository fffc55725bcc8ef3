using System.Net;

namespace Hive.Attack.Tests.Net;

public sealed partial class EgressFromInsideTests
{
    /// <summary>(label, address the name resolves to, what the refusal must say).</summary>
    private static readonly object[][] InwardTargets =
    [
        ["private10", "10.0.0.1", "10.0.0.1 is a private address"],
        ["private172", "172.16.0.1", "172.16.0.1 is a private address"],
        ["private192", "192.168.0.1", "192.168.0.1 is a private address"],
        ["cgnat", "100.64.0.1", "100.64.0.1 is a shared/CGNAT address"],
        ["linklocal", "169.254.1.1", "169.254.1.1 is a link-local address"],
        ["metadata", "169.254.169.254", "169.254.169.254 is a cloud metadata service address"],
        ["metadata-alibaba", "100.100.100.200", "100.100.100.200 is a cloud metadata service address"],
        ["loopback", "127.0.0.2", "127.0.0.2 is an address of the host itself"],
        ["benchmark", "198.18.0.1", "198.18.0.1 is a benchmarking address"],
        ["ula", "fd12:3456:789a::1", "fd12:3456:789a::1 is a unique local address"],
        ["metadata-v6", "fd00:ec2::254", "fd00:ec2::254 is a cloud metadata service address"],
        ["linklocal-v6", "fe80::1", "fe80::1 is a link-local address"],
        ["mapped", "::ffff:10.0.0.1", "10.0.0.1 (embedded in ::ffff:10.0.0.1) is a private address (RFC 1918)"],
        ["nat64", "64:ff9b::a9fe:a9fe", "169.254.169.254 (embedded in 64:ff9b::a9fe:a9fe) is a cloud metadata service address"],
        ["sixtofour", "2002:a9fe:a9fe::1", "169.254.169.254 (embedded in 2002:a9fe:a9fe::1) is a cloud metadata service address"],
        ["synthetic", NetPools.SyntheticAddress(5000).ToString(), "is in Hive's synthetic address pool"],
    ];

    [TestCaseSource(nameof(InwardTargets))]
    [Defence("SbxProxy refuses upstream addresses that are private, shared, link-local, loopback, ULA, metadata or Hive's own (also in IPv6 forms), before connecting")]
    public async Task A_name_resolving_to_an_inward_address_is_refused_before_any_packet_is_sent(string label, string address, string reason)
    {
        var name = label + ".inward.attack.test";
        var (outcome, body) = await CurlAsync($"http://{name}/latest/meta-data/");
        Assert.That(outcome, Is.EqualTo("502 rc=0"), body);
        Assert.That(body, Does.Contain("\"decision\":\"deny\"").And.Contain(reason).And.Contain("refused before connecting"));
        var denied = await DeniedAsync("net.http", e => Text(e, "host") == name);
        Assert.That((Text(denied, "rule"), denied.GetProperty("status").GetInt32()), Is.EqualTo(("upstream address", 502)));
        Assert.That(Text(denied, "error"), Does.Contain(reason));
        Assert.That(await _guard.PacketsToAsync(Guarded(address)), Is.Zero, "not one packet was sent toward " + address);
    }

    [TestCase(8000)]
    [TestCase(8001)]
    [Defence("SbxProxy refuses upstream addresses in Hive's own sandbox network, whatever name points there")]
    public async Task A_name_resolving_to_another_sandbox_does_not_reach_it(int port)
    {
        var (outcome, body) = await CurlAsync($"http://victim.attack.test:{port}/");
        Assert.That(outcome, Is.EqualTo("502 rc=0"), body);
        Assert.That(body, Does.Contain($"{_victimIp} is in Hive's sandbox network").And.Not.Contain("Directory listing"));
        var denied = await DeniedAsync("net.http", e => Text(e, "host") == "victim.attack.test" && e.GetProperty("port").GetInt32() == port);
        Assert.That(Text(denied, "rule"), Is.EqualTo("upstream address"));
    }

    [Test]
    [Defence("raw TCP to a name resolving inward is refused before connecting (reset)")]
    public async Task Raw_TCP_to_a_name_resolving_inward_is_reset()
    {
        var result = await PythonAsync("""
            import json, socket
            s = socket.create_connection(("rawinner.attack.test", 5432), timeout=10)
            try:
                data = s.recv(100)
                print(json.dumps({"outcome": "closed" if not data else "data"}))
            except ConnectionResetError:
                print(json.dumps({"outcome": "reset"}))
            """);
        Assert.That(result.GetProperty("outcome").GetString(), Is.EqualTo("reset"));
        var denied = await DeniedAsync("net.connect", e => Text(e, "host") == "rawinner.attack.test");
        Assert.That((Text(denied, "rule"), Text(denied, "error")), Is.EqualTo(("upstream address", "rawinner.attack.test: 10.0.0.2 is a private address (RFC 1918); refused before connecting")));
        Assert.That(await _guard.PacketsToAsync(IPAddress.Parse("10.0.0.2")), Is.Zero);
    }

    [TestCase("victim")]
    [TestCase("controller")]
    [TestCase("metadata")]
    [Defence("a connection's destination must be a synthetic address the sandbox's DNS handed out: literal IPs are reset")]
    public async Task A_direct_connection_to_an_address_is_reset(string target)
    {
        var destination = target switch
        {
            "victim" => $"{_victimIp}:8000",
            "controller" => $"{_attackerHostIp}:{_controller.BaseAddress.Port}",
            _ => "169.254.169.254:80",
        };
        var (outcome, _) = await CurlAsync($"http://{destination}/");
        Assert.That(outcome, Does.StartWith("000 rc="));
        var denied = await DeniedAsync("net.connect", e => Text(e, "error").Contains($"direct connection to {destination}", StringComparison.Ordinal));
        Assert.That(Text(denied, "rule"), Is.EqualTo("no name"));
    }
}
