namespace Hive.Attack.Tests.Net;

public sealed partial class EgressFromInsideTests
{
    [Test]
    [Defence("SbxProxy refuses a request with more than one Host header (400)")]
    public async Task Duplicate_Host_headers_are_refused()
    {
        var result = await PythonAsync(RawHttp + $$"""

            print(json.dumps(exchange("api.attack.test", {{_upstream.Http}}, b"GET /public/x HTTP/1.1\r\nHost: api.attack.test\r\nHost: other.attack.test\r\n\r\n")))
            """);
        Assert.That(result.GetProperty("first").GetProperty("status").GetString(), Is.EqualTo("HTTP/1.1 400 Bad Request"), result.GetRawText());
        var denied = await DeniedAsync("net.http", e => Text(e, "error") == "more than one Host header");
        Assert.That(denied.GetProperty("status").GetInt32(), Is.EqualTo(400));
    }

    [Test]
    [Defence("chunk-size lines end only with CRLF: a bare LF is a 400 and the upstream connection is dropped mid-message")]
    public async Task A_request_smuggled_behind_a_bare_LF_chunk_never_reaches_a_denied_path()
    {
        // Behind the last chunk ("0\n") hides GET /admin/secret (denied by rule). A server that takes a
        // bare LF as a line end would answer it; the next request on the connection would receive that answer.
        var result = await PythonAsync(RawHttp + $$"""

            smuggle = b"POST /public/upload HTTP/1.1\r\nHost: api.attack.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\n\r\nGET /admin/secret HTTP/1.1\r\nHost: api.attack.test\r\n\r\n"
            print(json.dumps(exchange("api.attack.test", {{_upstream.Http}}, smuggle, b"GET /public/next HTTP/1.1\r\nHost: api.attack.test\r\n\r\n")))
            """);
        Assert.That(result.GetProperty("first").GetProperty("status").GetString(), Is.EqualTo("HTTP/1.1 400 Bad Request"), result.GetRawText());
        Assert.That(result.GetProperty("second").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null), "the proxy closed the connection");
        Assert.That(result.GetRawText(), Does.Not.Contain("/admin/secret\""), "no answer for the smuggled request");
        var denied = await DeniedAsync("net.http", e => Text(e, "path") == "/public/upload" && Text(e, "error").Contains("bare LF", StringComparison.Ordinal));
        Assert.That(denied.GetProperty("status").GetInt32(), Is.EqualTo(400));
    }

    [Test]
    [Defence("only a requested WebSocket upgrade may switch protocols: h2c offers are removed, any other 101 is a 502")]
    public async Task An_h2c_upgrade_never_turns_the_connection_into_an_uninspected_pipe()
    {
        // curl offers h2c; the upstream switches for anything that mentions it. The offer never reaches it.
        var (offer, body) = await CurlAsync($"--http2 http://api.attack.test:{_upstream.Http}/public/h2c");
        Assert.That(offer, Is.EqualTo("200 rc=0"), body);
        Assert.That(body, Does.Contain("\"path\": \"/public/h2c\"").And.Not.Contain("PIPE"));

        // An upstream that switches protocols unasked: the 101 is never relayed.
        var result = await PythonAsync(RawHttp + $$"""

            print(json.dumps(exchange("api.attack.test", {{_upstream.Http}}, b"GET /always-101 HTTP/1.1\r\nHost: api.attack.test\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", b"GET /admin/secret HTTP/1.1\r\nHost: api.attack.test\r\n\r\n")))
            """);
        Assert.That(result.GetProperty("first").GetProperty("status").GetString(), Is.EqualTo("HTTP/1.1 502 Bad Gateway"), result.GetRawText());
        Assert.That(result.GetRawText(), Does.Not.Contain("PIPE"));
        var denied = await DeniedAsync("net.http", e => Text(e, "path") == "/always-101");
        Assert.That(Text(denied, "error"), Does.Contain("only a requested WebSocket upgrade may switch protocols"));
    }

    [TestCase("/ADMIN/secret")]
    [TestCase("/Admin/secret")]
    [TestCase("/admin;jsessionid=x/secret")]
    [TestCase("/public/..;/admin/secret")]
    [TestCase("/%61dmin/secret")]
    [TestCase("/public/%2e%2e/admin/secret")]
    [TestCase("//admin/secret")]
    [Defence("deny rules match every reading of the path case-insensitively; ambiguous paths are refused")]
    public async Task A_path_variant_does_not_pass_a_deny_rule(string path)
    {
        var (outcome, body) = await CurlAsync($"--path-as-is 'http://api.attack.test:{_upstream.Http}{path}'");
        Assert.That(outcome, Is.EqualTo("403 rc=0"), body);
        Assert.That(body, Does.Contain("\"decision\":\"deny\""));
        var denied = await DeniedAsync("net.http", e => Text(e, "path") == path);
        Assert.That(denied.GetProperty("status").GetInt32(), Is.EqualTo(403));
    }
}
