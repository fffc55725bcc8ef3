using System.Net;
using System.Net.Sockets;

namespace Hive.Attack.Tests.Pid1;

/// <summary>
/// The default image's MCP server (port 8080, no authentication of its own: its tools run as the
/// sandbox's root) must be reachable only through the Controller, which checks the API key and
/// tunnels to the sandbox's loopback. Not from the host through the veth, not on the sandbox's own
/// network address.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
public sealed class InitListenerTests : InitFixture
{
    private string _sandbox = null!;
    private IPAddress _address = null!;

    [OneTimeSetUp]
    public async Task CreateSandboxAsync()
    {
        _sandbox = await CreateSandboxAsync("pid1-net", new() { ["network"] = "isolated" });
        var (_, detail) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{_sandbox}");
        _address = IPAddress.Parse(detail.GetProperty("network").GetProperty("ip").GetString()!);
    }

    [OneTimeTearDown]
    public async Task DestroySandboxAsync()
    {
        if (_sandbox is not null)
        {
            await Controller.DestroyAsync(_sandbox);
        }
    }

    [Test]
    [Category(From.Outside)]
    [Defence("the agent's MCP port listens on the sandbox's loopback only")]
    public async Task A_host_user_cannot_reach_the_mcp_port_through_the_veth()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var refused = Assert.ThrowsAsync<SocketException>(async () => await socket.ConnectAsync(new IPEndPoint(_address, 8080), timeout.Token));
        Assert.That(refused!.SocketErrorCode, Is.EqualTo(SocketError.ConnectionRefused), $"{_address}:8080");

        // The way in that is meant to work: through the Controller (sandbox.url), tunnelled to 127.0.0.1.
        await InitializeMcpAsync(_sandbox, "proxy/8080/mcp");
    }

    [Test]
    [Category(From.Inside)]
    [Defence("the agent's MCP port listens on the sandbox's loopback only")]
    public async Task The_mcp_port_is_closed_on_the_sandboxs_network_address()
    {
        var (exit, _, stderr) = await RunAsync(_sandbox, $"curl -sS -m 10 -o /dev/null http://{_address}:8080/mcp");
        Assert.That(exit, Is.EqualTo(7), "curl: connection refused expected; " + stderr);
        var loopback = await RunAsync(_sandbox, "curl -sS -m 10 -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/mcp");
        Assert.That(loopback.Stdout, Does.Match("^[1-5][0-9][0-9]$"), "the MCP server answers on loopback: " + loopback.Stderr);
    }
}
