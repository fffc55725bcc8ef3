namespace Hive.SbxProxy.Tests.Http;

/// <summary>
/// Request smuggling and protocol switching through a real <see cref="SbxProxy.Http.HttpSession"/>:
/// each case asserts what the sandbox is told, what the upstream received (nothing it could read as
/// another request) and the deny event.
/// </summary>
public sealed class SmugglingTests
{
    private SessionHarness _proxy = null!;

    [SetUp]
    public void SetUp() => _proxy = SessionHarness.Start();

    [TearDown]
    public async Task TearDownAsync() => await _proxy.DisposeAsync();

    private void AssertDenied(string response, int status, string reason)
    {
        Assert.That(response, Does.StartWith($"HTTP/1.1 {status} "), response);
        Assert.That(response, Does.Contain(reason));
        var deny = _proxy.Events().Where(e => e.Kind == "net.http" && e.Decision == "deny").ToList();
        Assert.That(deny.Any(e => e.Net.Status == status && e.Net.Error.Contains(reason, StringComparison.Ordinal)), $"a net.http deny event with {status} and '{reason}'");
    }

    [Test]
    public async Task Duplicate_Host_headers_are_refused()
    {
        var response = await _proxy.ExchangeAsync("GET / HTTP/1.1\r\nHost: up.test\r\nHost: other.test\r\n\r\n");
        AssertDenied(response, 400, "more than one Host header");
        Assert.That(_proxy.Received, Is.Empty);
    }

    [TestCase("GET / HTTP/1.1\nHost: up.test\r\n\r\n", "bare LF")]
    [TestCase("GET / HTTP/1.1\r\nHost: up.test\n\n", "bare LF")]
    [TestCase("GET / HTTP/1.1\r\nHost: up.test\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n", "bare LF")]
    [TestCase("GET / HTTP/1.1\r\nHost: up.test\r\nX-A: 1\rX-B: 2\r\n\r\n", "bare CR")]
    [TestCase("GET / HTTP/1.1\r\nHost: up.test\r\nX-A: a\u0001b\r\n\r\n", "control character")]
    [TestCase("GET / HTTP/1.1\r\nHost: up.test\r\nX A: b\r\n\r\n", "malformed header")]
    public async Task Heads_with_other_line_endings_or_controls_are_refused(string request, string reason)
    {
        var response = await _proxy.ExchangeAsync(request);
        AssertDenied(response, 400, reason);
        Assert.That(_proxy.Received, Is.Empty);
    }

    [TestCase("5\r\nhello\r\n0\n\r\n", "bare LF")]
    [TestCase("5\nhello\r\n0\r\n\r\n", "bare LF")]
    [TestCase("5\r\nhello\n0\r\n\r\n", "bare LF")]
    [TestCase("5 \r\nhello\r\n0\r\n\r\n", "chunk size line")]
    [TestCase("5;a b\r\nhello\r\n0\r\n\r\n", "chunk size line")]
    [TestCase("5;a=\"x\r\nhello\r\n0\r\n\r\n", "unterminated")]
    [TestCase("0x5\r\nhello\r\n0\r\n\r\n", "chunk size line")]
    [TestCase("-5\r\nhello\r\n0\r\n\r\n", "invalid chunk size")]
    [TestCase("5\r\nhello\r\n0\r\nX: a\nY: b\r\n\r\n", "bare LF")]
    [TestCase("5\r\nhello\r\n0\r\nContent-Length: 40\r\n\r\n", "not allowed in a trailer")]
    [TestCase("5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", "not allowed in a trailer")]
    [TestCase("5\r\nhello\r\n0\r\n folded: x\r\n\r\n", "malformed trailer")]
    public async Task Chunked_bodies_that_could_hide_a_request_are_refused_and_the_upstream_connection_dropped(string chunks, string reason)
    {
        var response = await _proxy.ExchangeAsync("POST /upload HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + "GET /admin HTTP/1.1\r\nHost: up.test\r\n\r\n");
        AssertDenied(response, 400, reason);
        Assert.That(response, Does.Not.Contain("200 OK"), "the smuggled request was never answered");
        Assert.That(_proxy.Received, Does.Not.Contain("/admin"));
    }

    [Test]
    public async Task Chunk_extensions_are_dropped_and_sizes_rewritten_canonically()
    {
        var response = await _proxy.ExchangeAsync("POST /upload HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\r\n0005;name=\"a;\\\"b\" ; x = y\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n");
        Assert.That(response, Does.StartWith("HTTP/1.1 200 OK"), response);
        Assert.That(_proxy.Received, Does.EndWith("\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n"));
    }

    [Test]
    public async Task Transfer_encoding_in_HTTP_1_0_is_refused()
    {
        var response = await _proxy.ExchangeAsync("POST / HTTP/1.0\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        AssertDenied(response, 400, "ambiguous or unsupported request framing");
    }

    [Test]
    public async Task An_h2c_upgrade_offer_is_removed_so_the_upstream_answers_in_HTTP_1_1()
    {
        _proxy.Answer = head => head.Contains("h2c", StringComparison.OrdinalIgnoreCase)
            ? "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        var response = await _proxy.ExchangeAsync("GET / HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n");
        Assert.That(response, Does.StartWith("HTTP/1.1 200 OK"), response);
        Assert.That(_proxy.Received, Does.Not.Contain("Upgrade").IgnoreCase.And.Not.Contain("HTTP2-Settings").IgnoreCase);
    }

    [TestCase("GET / HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")]
    [TestCase("GET / HTTP/1.1\r\nHost: up.test\r\n\r\n")]
    [TestCase("POST / HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n")]
    public async Task A_101_the_sandbox_did_not_ask_a_WebSocket_for_is_never_relayed(string request)
    {
        _proxy.Answer = _ => "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        var response = await _proxy.ExchangeAsync(request);
        AssertDenied(response, 502, "only a requested WebSocket upgrade may switch protocols");
        Assert.That(response, Does.Not.Contain("HTTP/1.1 101").And.Not.Contain("PRI *"));
    }

    [Test]
    public async Task A_requested_WebSocket_upgrade_is_still_relayed()
    {
        _proxy.Answer = _ => "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\n\r\n";
        var response = await _proxy.ExchangeAsync("GET /ws HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        Assert.That(response, Does.StartWith("HTTP/1.1 101 "), response);
        Assert.That(_proxy.Received, Does.Contain("Upgrade: websocket"));
        Assert.That(_proxy.Events().Any(e => e.Kind == "net.websocket" && e.Decision == "allow"));
    }

    [TestCase("GET http://up.test@evil.test/ HTTP/1.1\r\nHost: up.test\r\n\r\n")]
    [TestCase("GET http://evil.test/ HTTP/1.1\r\nHost: up.test\r\n\r\n")]
    [TestCase("GET http://up.test.evil.test/ HTTP/1.1\r\nHost: up.test\r\n\r\n")]
    [TestCase("GET http://[::1]/ HTTP/1.1\r\nHost: up.test\r\n\r\n")]
    [TestCase("GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n")]
    [TestCase("GET / HTTP/1.1\r\nHost: up.test@evil.test\r\n\r\n")]
    public async Task Absolute_targets_and_Host_headers_naming_another_host_are_refused(string request)
    {
        var response = await _proxy.ExchangeAsync(request);
        AssertDenied(response, 403, "the connection's destination up.test");
        Assert.That(_proxy.Received, Is.Empty);
    }

    [Test]
    public async Task Absolute_targets_are_not_normalised_before_the_rules_see_them()
    {
        var response = await _proxy.ExchangeAsync("GET http://up.test/public/../admin HTTP/1.1\r\nHost: up.test\r\n\r\n");
        AssertDenied(response, 403, "can be read more than one way");
        Assert.That(_proxy.Received, Is.Empty);
    }

    [Test]
    public async Task Transfer_encoding_from_upstream_overrides_and_removes_Content_Length()
    {
        _proxy.Answer = _ => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        var response = await _proxy.ExchangeAsync("GET / HTTP/1.1\r\nHost: up.test\r\n\r\n");
        Assert.That(response, Does.StartWith("HTTP/1.1 200 OK").And.Not.Contain("Content-Length").And.EndWith("2\r\nok\r\n0\r\n\r\n"));
    }
}
