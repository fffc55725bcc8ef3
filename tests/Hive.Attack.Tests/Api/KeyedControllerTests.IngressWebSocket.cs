using System.Text.Json;

namespace Hive.Attack.Tests.Api;

/// <summary>
/// Ingress WebSocket handshakes are forwarded as they are (the sandbox's server answers the 101):
/// the same header policy applies to the handshake both ways, so neither the caller's credentials
/// nor the sandbox's origin-wide fields cross with it.
/// </summary>
public sealed partial class KeyedControllerTests
{
    /// <summary>Answers every request with a valid WebSocket 101 that also tries to plant a cookie and act on the origin, then closes.</summary>
    private const string HostileHandshakeServer = """
        import base64, hashlib, socket, sys

        GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", int(sys.argv[1])))
        server.listen()
        while True:
            conn, _ = server.accept()
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                keys = [l.split(":", 1)[1].strip() for l in request.decode().split("\r\n") if l.lower().startswith("sec-websocket-key:")]
                accept = base64.b64encode(hashlib.sha1((keys[0] + GUID).encode()).digest()).decode() if keys else ""
                conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: %s\r\nSet-Cookie: hive_session=planted-by-the-sandbox; Path=/\r\n"
                              "Clear-Site-Data: \"cookies\"\r\nWWW-Authenticate: Basic realm=\"Hive Controller\"\r\n\r\n" % accept).encode())
            except OSError:
                pass
            finally:
                conn.close()
        """;

    private const int HostileHandshakePort = 9200;

    private static readonly (string Name, string Value)[] Handshake =
    [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];

    [Test]
    [Defence("ingress header policy on forwarded WebSocket handshakes: no Authorization, Cookie or Proxy-Authorization into the sandbox")]
    public async Task A_websocket_handshake_carries_no_caller_credentials_into_the_sandbox()
    {
        // The echo server answers the handshake with 200 and the headers it received.
        var response = await SendAsync("GET", $"/api/v1/hiveboxes/{{v}}/proxy/{EchoPort}/socket", headers:
        [
            ("Authorization", "Bearer " + Key),
            ("Cookie", "hive_session=dashboard-session"),
            ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
            .. Handshake,
        ]);

        Assert.That(response.Status, Is.EqualTo(200), response.ToString());
        var names = JsonDocument.Parse(response.Body).RootElement.EnumerateArray().Select(h => h[0].GetString()!.ToLowerInvariant()).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(names, Does.Contain("sec-websocket-key").And.Contain("upgrade"), "the handshake itself was not forwarded: " + response.Body);
            Assert.That(names, Does.Not.Contain("authorization").And.Not.Contain("cookie").And.Not.Contain("proxy-authorization"), "credentials entered the sandbox with a handshake");
            Assert.That(response.Body, Does.Not.Contain(Key).And.Not.Contain("dashboard-session"));
        });

        var events = await Controller.WaitForEventsAsync(Victim, e => e.Any(x => x.GetProperty("path").GetString() == "/socket"), kind: "ingress.websocket");
        Assert.That(events.Single(e => e.GetProperty("path").GetString() == "/socket").GetProperty("status").GetInt32(), Is.EqualTo(200));
    }

    [Test]
    [Defence("ingress header policy on the sandbox's own 101: no Set-Cookie, Clear-Site-Data or WWW-Authenticate reach the caller")]
    public async Task A_sandboxs_websocket_handshake_answer_cannot_plant_cookies()
    {
        await StartHostileHandshakeServerAsync();

        var response = await SendAsync("GET", $"/api/v1/hiveboxes/{{v}}/proxy/{HostileHandshakePort}/", headers: [("Authorization", "Bearer " + Key), .. Handshake]);

        Assert.That(response.Status, Is.EqualTo(101), "the sandbox's server did not answer the handshake: " + response);
        Assert.Multiple(() =>
        {
            foreach (var header in new[] { "Set-Cookie", "Clear-Site-Data", "WWW-Authenticate" })
            {
                Assert.That(response.All(header), Is.Empty, header + " from the sandbox's 101 reached the client");
            }

            Assert.That(response.Header("Sec-WebSocket-Accept"), Is.EqualTo("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "the handshake's own answer still passes");
        });

        var events = await Controller.WaitForEventsAsync(Victim, e => e.Any(x => x.GetProperty("port").GetInt32() == HostileHandshakePort), kind: "ingress.websocket");
        Assert.That(events.Single(e => e.GetProperty("port").GetInt32() == HostileHandshakePort).GetProperty("status").GetInt32(), Is.EqualTo(101));
    }

    private async Task StartHostileHandshakeServerAsync()
    {
        using (var upload = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(HostileHandshakeServer)))
        using (var put = await Controller.Http.PutAsync($"/api/v1/hiveboxes/{Victim}/files?path=/opt/hostile_handshake.py", upload))
        {
            Assert.That(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        }

        var started = await Controller.ExecAsync(Victim, $"(setsid python3 /opt/hostile_handshake.py {HostileHandshakePort} >/dev/null 2>&1 &); "
            + $"for i in $(seq 200); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {HostileHandshakePort}), 1)' 2>/dev/null && echo up && break; sleep 0.1; done", timeout: 60);
        Assert.That(started.GetProperty("stdout").GetString(), Is.EqualTo("up\n"), "the hostile handshake server did not start");
    }
}
