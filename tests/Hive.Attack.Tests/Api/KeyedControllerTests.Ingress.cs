using System.Net;
using System.Text.Json;

namespace Hive.Attack.Tests.Api;

/// <summary>
/// Ingress (<c>/proxy/:port/</c>) with the key: the caller's ambient credentials never reach the
/// sandbox's server, what the sandbox answers cannot plant cookies or act on the Controller's
/// origin, and every answer from a sandbox is marked to run in an opaque origin.
/// </summary>
public sealed partial class KeyedControllerTests
{
    [Test]
    [Defence("ingress header policy: no Authorization, Cookie, Proxy-Authorization or forged forwarding headers into the sandbox")]
    public async Task Caller_credentials_never_reach_a_server_in_the_sandbox()
    {
        var response = await SendAsync("GET", $"/api/v1/hiveboxes/{{v}}/proxy/{EchoPort}/whoami", headers:
        [
            ("Authorization", "Bearer " + Key),
            ("Cookie", "hive_session=dashboard-session; other=value"),
            ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "for=203.0.113.9;host=evil.example"),
            ("X-Kept", "passes"),
        ]);

        Assert.That(response.Status, Is.EqualTo(200), response.ToString());
        var received = JsonDocument.Parse(response.Body).RootElement.EnumerateArray()
            .Select(h => KeyValuePair.Create(h[0].GetString()!.ToLowerInvariant(), h[1].GetString()!)).ToList();
        var names = received.Select(h => h.Key).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(names, Does.Not.Contain("authorization").And.Not.Contain("cookie").And.Not.Contain("proxy-authorization"), "credentials entered the sandbox");
            Assert.That(names, Does.Not.Contain("forwarded"), "a forged forwarding header entered the sandbox");
            Assert.That(received.Single(h => h.Key == "x-forwarded-host").Value, Is.EqualTo(Controller.BaseAddress.Authority), "the forwarding headers are the Controller's own");
            Assert.That(received.Single(h => h.Key == "x-kept").Value, Is.EqualTo("passes"), "ordinary headers still pass");
            Assert.That(response.Body, Does.Not.Contain(Key).And.Not.Contain("dashboard-session"));
        });
    }

    [Test]
    [Defence("ingress header policy: no Set-Cookie, Clear-Site-Data, WWW-Authenticate or HSTS out of the sandbox")]
    public async Task A_sandbox_cannot_plant_cookies_or_act_on_the_controllers_origin()
    {
        var raw = await SendAsync("POST", $"/api/v1/hiveboxes/{{v}}/proxy/{EchoPort}/login", "user=a", headers: [("Authorization", "Bearer " + Key), ("Content-Type", "application/x-www-form-urlencoded")]);
        Assert.That(raw.Status, Is.EqualTo(200), raw.ToString());
        Assert.Multiple(() =>
        {
            foreach (var header in new[] { "Set-Cookie", "Set-Cookie2", "Clear-Site-Data", "WWW-Authenticate", "Strict-Transport-Security" })
            {
                Assert.That(raw.All(header), Is.Empty, header + " from the sandbox reached the client");
            }

            Assert.That(raw.Header("X-From-Sandbox"), Is.EqualTo("yes"), "the sandbox's ordinary headers still pass");
        });

        // A client that keeps cookies (as a browser does) ends up with none for the Controller's origin.
        var jar = new CookieContainer();
        using var handler = new HttpClientHandler { CookieContainer = jar, UseCookies = true };
        using var browserLike = new HttpClient(handler) { BaseAddress = Controller.BaseAddress };
        browserLike.DefaultRequestHeaders.Authorization = new("Bearer", Key);
        using var page = await browserLike.GetAsync($"/api/v1/hiveboxes/{Victim}/proxy/{EchoPort}/");
        Assert.That(page.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(jar.GetAllCookies(), Is.Empty, "the sandbox planted a cookie on the Controller's origin");
    }

    [Test]
    [Defence("Content-Security-Policy sandbox (no allow-same-origin) on every answer from a sandbox: ingress, MCP, file download")]
    public async Task Everything_a_sandbox_serves_runs_in_an_opaque_origin()
    {
        var auth = ("Authorization", "Bearer " + Key);
        var page = await SendAsync("GET", $"/api/v1/hiveboxes/{{v}}/proxy/{EchoPort}/index.html", headers: auth);
        var mcp = await SendAsync("POST", "/api/v1/hiveboxes/{v}/mcp", """{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "attack", "version": "1"}}}""",
            headers: [auth, Json, ("Accept", "application/json, text/event-stream")]);
        var download = await SendAsync("GET", "/api/v1/hiveboxes/{v}/files?path=/opt/echo_headers.py", headers: auth);

        Assert.Multiple(() =>
        {
            foreach (var (what, response) in new[] { ("ingress page", page), ("MCP answer", mcp), ("file download", download) })
            {
                Assert.That(response.Status, Is.EqualTo(200), what + ": " + response);
                var policies = response.All("Content-Security-Policy").ToList();
                // Every policy a response carries is enforced; ours has no allow-same-origin, so the
                // sandbox's own "sandbox allow-same-origin" cannot lift it.
                Assert.That(policies.Any(p => p.StartsWith("sandbox", StringComparison.Ordinal) && !p.Contains("allow-same-origin", StringComparison.Ordinal)), Is.True,
                    $"{what} is not confined to an opaque origin: {string.Join(" | ", policies)}");
            }
        });
    }
}
