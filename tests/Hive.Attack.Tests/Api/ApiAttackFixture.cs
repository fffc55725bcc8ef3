using System.Net.Http.Json;
using System.Text.Json;

namespace Hive.Attack.Tests.Api;

/// <summary>
/// A real Controller (with or without a key) and one sandbox, the victim, with two servers inside
/// it: on <see cref="EchoPort"/> an HTTP server that answers every request with the headers it
/// received (and tries to plant cookies and origin-wide headers), on <see cref="WebSocketPort"/> a
/// WebSocket echo. Attacks come from outside, over raw TCP where the exact bytes matter.
/// </summary>
public abstract class ApiAttackFixture : SharedControllerFixture
{
    protected const int EchoPort = 9000;
    protected const int WebSocketPort = 9100;

    protected static readonly (string Name, string Value) Json = ("Content-Type", "application/json");

    /// <summary>Answers any method with the request's headers as JSON (served as a page), and every header a page must not get to set.</summary>
    private const string EchoServer = """
        import http.server, json, sys

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = json.dumps([[k, v] for k, v in self.headers.items()]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Set-Cookie", "hive_session=planted-by-the-sandbox; Path=/")
                self.send_header("Set-Cookie", "dashboard_key=overwritten; Path=/; HttpOnly")
                self.send_header("Clear-Site-Data", '"storage", "cookies"')
                self.send_header("WWW-Authenticate", 'Basic realm="Hive Controller"')
                self.send_header("Strict-Transport-Security", "max-age=31536000")
                self.send_header("Content-Security-Policy", "sandbox allow-same-origin allow-scripts")
                self.send_header("X-From-Sandbox", "yes")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """;

    protected string Victim { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task CreateVictimAsync()
    {
        Victim = Names.Unique("victim");
        await Controller.CreateAsync(new { name = Victim });
        await UploadAsync("/opt/echo_headers.py", System.Text.Encoding.UTF8.GetBytes(EchoServer));
        await UploadAsync("/opt/ws_echo.py", await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "Resources", "ws_echo.py")));
        var started = await Controller.ExecAsync(Victim, $"(setsid python3 /opt/echo_headers.py {EchoPort} >/dev/null 2>&1 &); (setsid python3 /opt/ws_echo.py {WebSocketPort} >/dev/null 2>&1 &); "
            + $"for i in $(seq 200); do python3 -c 'import socket; [socket.create_connection((\"127.0.0.1\", p), 1) for p in ({EchoPort}, {WebSocketPort})]' 2>/dev/null && echo up && break; sleep 0.1; done", timeout: 60);
        Assert.That(started.GetProperty("stdout").GetString(), Is.EqualTo("up\n"), "the servers inside the victim did not start");
    }

    /// <summary>One request exactly as written, to this fixture's Controller.</summary>
    protected Task<RawResponse> SendAsync(string method, string target, string? body = null, string? host = null, params (string Name, string Value)[] headers) =>
        RawHttp.SendAsync(Controller.BaseAddress, method, target.Replace("{v}", Victim, StringComparison.Ordinal), body, host, headers);

    /// <summary>
    /// Where the attack starts in the victim's event log: a command's <c>exec.started</c>, recorded
    /// after everything earlier tests did (their last events may become durable a little late).
    /// </summary>
    protected async Task<ulong> MarkAsync() => (await WitnessAsync()).Seq;

    /// <summary>
    /// Nothing the attack asked for happened: no sandbox created or destroyed, no secret stored, no
    /// command or tool call started and nothing forwarded into the victim since <paramref name="mark"/>,
    /// no file written there. A command run now with the key is the witness: once its
    /// <c>exec.started</c> is on record, any earlier one since the mark would be the attack's.
    /// </summary>
    protected async Task AssertNothingHappenedAsync(ulong mark)
    {
        var (witness, events) = await WitnessAsync(mark);
        Assert.That(events.Where(e => e.GetProperty("seq").GetUInt64() > mark && e.GetProperty("seq").GetUInt64() < witness).Select(e => e.ToString()), Is.Empty, "the attack ran something in the victim or reached its servers");

        var list = await Controller.Http.GetFromJsonAsync<JsonElement>("/api/v1/hiveboxes");
        Assert.That(list.GetProperty("sandboxes").EnumerateArray().Select(s => s.GetProperty("id").GetString()), Is.EqualTo(new[] { Victim }), "a sandbox was created or destroyed");
        Assert.That(Directory.Exists(Path.Combine(Controller.DataDir, "secrets")) ? Directory.GetFiles(Path.Combine(Controller.DataDir, "secrets")) : [], Is.Empty, "a secret was stored");
    }

    /// <summary>
    /// Runs a witness command (with the key) that also checks no attack wrote <c>/tmp/pwned</c>,
    /// waits until its <c>exec.started</c> is on record and returns its sequence number with the
    /// command/tool/ingress events after <paramref name="since"/> up to it.
    /// </summary>
    private async Task<(ulong Seq, List<JsonElement> Events)> WitnessAsync(ulong since = 0)
    {
        var marker = "witness-" + Guid.NewGuid().ToString("N")[..8];
        var run = await Controller.ExecAsync(Victim, $"test ! -e /tmp/pwned && echo {marker}");
        Assert.That(run.GetProperty("stdout").GetString(), Is.EqualTo(marker + "\n"), "the attack wrote /tmp/pwned in the victim");

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var events = await Controller.EventsAsync(Victim, kind: "exec.started,mcp.started,ingress", since: since);
            var seen = events.FirstOrDefault(e => e.GetProperty("kind").GetString() == "exec.started" && Command(e).Contains(marker, StringComparison.Ordinal));
            if (seen.ValueKind != JsonValueKind.Undefined)
            {
                var seq = seen.GetProperty("seq").GetUInt64();
                return (seq, [.. events.Where(e => e.GetProperty("seq").GetUInt64() <= seq)]);
            }

            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the witness command never went on record");
            await Task.Delay(50);
        }
    }

    /// <summary>A 4xx in the API's error shape.</summary>
    protected static void AssertRefused(RawResponse response, int status)
    {
        Assert.That(response.Status, Is.EqualTo(status), response.ToString());
        Assert.That(JsonDocument.Parse(response.Body).RootElement.GetProperty("error").GetString(), Is.Not.Empty, response.ToString());
    }

    private static string Command(JsonElement e) => e.TryGetProperty("command", out var c) ? c.GetString() ?? string.Empty : string.Empty;

    private async Task UploadAsync(string path, byte[] content)
    {
        using var upload = new ByteArrayContent(content);
        using var put = await Controller.Http.PutAsync($"/api/v1/hiveboxes/{Victim}/files?path={path}", upload);
        Assert.That(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
    }
}
