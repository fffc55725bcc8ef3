namespace Hive.Attack.Tests.Net;

public sealed partial class EgressFromInsideTests
{
    [TestCase(8001)]
    [TestCase(8080)]
    [Defence("a shared-group peer is reached only on the ports it exposes (policy-checked, audited)")]
    public async Task A_group_peers_unexposed_port_is_refused(int port)
    {
        var (refused, _) = await CurlAsync($"http://{_victim}.hive:{port}/");
        Assert.That(refused, Does.StartWith("000 rc="), "reset before anything reached the peer");
        var denied = await DeniedAsync("net.connect", e => Text(e, "host") == _victim + ".hive" && e.GetProperty("port").GetInt32() == port);
        Assert.That(Text(denied, "error"), Is.EqualTo($"port {port} of {_victim} is not exposed to the group (it exposes 8000)"));
        Assert.That(Text(denied, "rule"), Is.EqualTo($"network shared: group {Group}"));

        // The exposed port still works, so the refusal is about the port, not the peer.
        var (allowed, body) = await CurlAsync($"http://{_victim}.hive:8000/");
        Assert.That(allowed, Is.EqualTo("200 rc=0"), body);
        var events = await _controller.WaitForEventsAsync(_attacker, e => e.Any(x => Text(x, "host") == _victim + ".hive" && Text(x, "decision") == "allow"), kind: "net.connect");
        Assert.That(events.Any(x => Text(x, "rule") == $"network shared: group {Group}, exposed port 8000" && Text(x, "ip") == _victimIp));
    }

    [TestCase(8001)]
    [TestCase(8080)]
    [Category(From.Outside)]
    [Defence("host firewall: toward a sandbox's address only replies and its exposed ports (any host user)")]
    public async Task An_unprivileged_host_user_reaches_a_sandbox_only_on_exposed_ports(int port)
    {
        var (code, output, error) = await Host.RunAsync("runuser", "-u", "nobody", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", $"http://{_victimIp}:{port}/");
        Assert.That((code, output), Is.EqualTo((7, "000")), "connection refused by the host's firewall: " + error);
        var (exposedCode, exposed, _) = await Host.RunAsync("runuser", "-u", "nobody", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", $"http://{_victimIp}:8000/");
        Assert.That((exposedCode, exposed), Is.EqualTo((0, "200")), "the exposed port is reachable");
    }
}
