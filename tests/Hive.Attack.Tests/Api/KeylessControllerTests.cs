using System.Net;
using System.Net.WebSockets;
using System.Text;

namespace Hive.Attack.Tests.Api;

/// <summary>
/// A Controller without a key (loopback only, open to local callers) attacked by a web page in the
/// user's browser: requests carrying another origin, bodies a page can send without a CORS
/// preflight, a name re-bound to 127.0.0.1, WebSocket handshakes — all refused, nothing happens.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
[Category(From.Outside)]
public sealed class KeylessControllerTests : ApiAttackFixture
{
    private const string Touch = """{"command": "touch /tmp/pwned"}""";
    private const string Evil = "https://evil.example";

    [Defence("Host check without a key: only loopback names are answered (DNS rebinding)")]
    [TestCase("evil.example:{port}")]
    [TestCase("evil.example")]
    [TestCase("127.0.0.1.evil.example:{port}")]
    [TestCase("localhost.evil.example")]
    [TestCase("rebind.127.0.0.1.nip.io:{port}")]
    public async Task A_page_on_a_rebound_name_can_neither_run_nor_read_anything(string host)
    {
        host = host.Replace("{port}", Controller.BaseAddress.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        var mark = await MarkAsync();

        // Rebinding gives the page a same-origin view of 127.0.0.1: no Origin problem, JSON allowed.
        var run = await SendAsync("POST", "/api/v1/hiveboxes/{v}/exec", Touch, host, Json);
        var read = await SendAsync("GET", "/api/v1/hiveboxes", host: host);

        AssertRefused(run, 400);
        AssertRefused(read, 400);
        Assert.That(read.Body, Does.Not.Contain(Victim), "the page read the sandbox list");
        await AssertNothingHappenedAsync(mark);
    }

    [Defence("cross-origin refusal (Origin / Sec-Fetch-Site) in the fallback policy")]
    [TestCase("POST", "/api/v1/hiveboxes/{v}/exec", Touch, "text/plain", "Origin: " + Evil)]
    [TestCase("POST", "/api/v1/hiveboxes", """{"name": "pwned"}""", "text/plain", "Origin: " + Evil)]
    [TestCase("POST", "/api/v1/hiveboxes/{v}/exec", Touch, "text/plain", "Origin: null")]
    [TestCase("POST", "/api/v1/hiveboxes/{v}/exec", Touch, "application/json", "Sec-Fetch-Site: cross-site")]
    [TestCase("POST", "/api/v1/hiveboxes/{v}/exec", Touch, "application/json", "Origin: http://127.0.0.1:1|Sec-Fetch-Site: same-site")]
    [TestCase("PUT", "/api/v1/secrets/stolen", "value=stolen-value", "application/x-www-form-urlencoded", "Origin: " + Evil)]
    [TestCase("POST", "/api/v1/hiveboxes/{v}/mcp", """{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "exec", "arguments": {"command": "touch /tmp/pwned"}}}""", "text/plain", "Origin: " + Evil)]
    [TestCase("POST", "/api/v1/hiveboxes/{v}/proxy/9000/", "a=b", "application/x-www-form-urlencoded", "Origin: null|Sec-Fetch-Site: cross-site")]
    [TestCase("DELETE", "/api/v1/hiveboxes/{v}", null, null, "Origin: " + Evil)]
    public async Task A_request_made_for_another_origin_is_403_and_does_nothing(string method, string target, string? body, string? type, string origin)
    {
        var mark = await MarkAsync();
        var headers = origin.Split('|').Select(h => (h[..h.IndexOf(':', StringComparison.Ordinal)], h[(h.IndexOf(':', StringComparison.Ordinal) + 2)..])).ToList();
        if (type is not null)
        {
            headers.Add(("Content-Type", type));
        }

        var response = await SendAsync(method, target, body, headers: [.. headers]);

        AssertRefused(response, 403);
        Assert.That(response.Body, Does.Contain("cross-origin request refused"));
        await AssertNothingHappenedAsync(mark);
    }

    [Defence("JSON-only bodies: anything a page can send without a preflight is 415")]
    [TestCase("/api/v1/hiveboxes/{v}/exec", "text/plain")]
    [TestCase("/api/v1/hiveboxes/{v}/exec", "text/plain; charset=application/json")]
    [TestCase("/api/v1/hiveboxes/{v}/exec", "application/x-www-form-urlencoded")]
    [TestCase("/api/v1/hiveboxes/{v}/exec", "multipart/form-data; boundary=x")]
    [TestCase("/api/v1/hiveboxes/{v}/exec", null)]
    [TestCase("/api/v1/hiveboxes/{v}/exec/stream", "text/plain")]
    [TestCase("/api/v1/hiveboxes", "application/x-www-form-urlencoded")]
    [TestCase("/api/v1/hiveboxes/{v}/mcp", "text/plain")]
    public async Task A_body_that_is_not_declared_json_is_415_and_does_nothing(string target, string? type)
    {
        var mark = await MarkAsync();
        var body = target.EndsWith("/mcp", StringComparison.Ordinal)
            ? """{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "exec", "arguments": {"command": "touch /tmp/pwned"}}}"""
            : target.EndsWith("hiveboxes", StringComparison.Ordinal) ? """{"name": "pwned"}""" : Touch;

        var response = type is null
            ? await SendAsync("POST", target, body)
            : await SendAsync("POST", target, body, headers: ("Content-Type", type));

        AssertRefused(response, 415);
        Assert.That(response.Body, Does.Contain("application/json"), "the answer says what to send");
        await AssertNothingHappenedAsync(mark);
    }

    [Test]
    [Defence("cross-origin refusal applies to WebSocket handshakes (ingress)")]
    public async Task A_web_page_cannot_open_a_websocket_into_a_sandbox()
    {
        var uri = new Uri($"ws://{Controller.BaseAddress.Authority}/api/v1/hiveboxes/{Victim}/proxy/{WebSocketPort}/");
        var mark = await MarkAsync();
        foreach (var origin in new[] { Evil, "null", $"http://localhost:{Controller.BaseAddress.Port}" })
        {
            using var socket = new ClientWebSocket();
            socket.Options.CollectHttpResponseDetails = true;
            socket.Options.SetRequestHeader("Origin", origin);
            Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(uri, CancellationToken.None), $"Origin {origin} was let through");
            Assert.That(socket.HttpStatusCode, Is.EqualTo(HttpStatusCode.Forbidden), $"Origin {origin}");
        }

        await AssertNothingHappenedAsync(mark);

        // The same handshake from the Controller's own origin (a page it serves itself) works.
        using var own = new ClientWebSocket();
        own.Options.SetRequestHeader("Origin", $"http://{Controller.BaseAddress.Authority}");
        await own.ConnectAsync(uri, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        await own.SendAsync(Encoding.UTF8.GetBytes("ping"), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[64];
        var received = await own.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.That(Encoding.UTF8.GetString(buffer, 0, received.Count), Is.EqualTo("echo: ping"));
        await own.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }
}
