namespace Hive.SbxProxy.Tests.Http;

/// <summary>Decisions a session makes before it connects: paths, upstream addresses, secrets bound to hosts.</summary>
public sealed class EgressDecisionTests
{
    private const string Policy = """
        {"deny": [{"host": "up.test", "paths": ["/admin/**"]}],
         "allow": [{"host": "up.test"}, {"host": "inner.test"}, {"host": "mapped.test"}, {"host": "meta.test"}, {"host": "peer.test"},
                   {"host": "sec.test", "inject": {"headers": {"Authorization": "Bearer ${secret:tok}"}}}]}
        """;

    private SessionHarness _proxy = null!;

    [SetUp]
    public void SetUp() => _proxy = SessionHarness.Start(Policy, new()
    {
        ["up.test"] = "127.0.0.1",
        ["sec.test"] = "127.0.0.1",
        ["inner.test"] = "10.0.0.1",
        ["mapped.test"] = "::ffff:192.168.1.1",
        ["meta.test"] = "169.254.169.254",
        ["peer.test"] = "10.220.0.2",
    });

    [TearDown]
    public async Task TearDownAsync() => await _proxy.DisposeAsync();

    [TestCase("/ADMIN/x")]
    [TestCase("/Admin/x")]
    [TestCase("/%61dmin/x")]
    [TestCase("/admin;x=1/y")]
    [TestCase("/public/..;/admin/x")]
    [TestCase("/public/%2e%2e/admin/x")]
    [TestCase("/public/%2E%2E/admin/x")]
    [TestCase("/public%2fadmin")]
    [TestCase("/public%5c..%5cadmin")]
    [TestCase("/public\\..\\admin")]
    [TestCase("//admin/x")]
    [TestCase("/%c0%ae%c0%ae/admin")]
    public async Task Path_variants_do_not_pass_a_deny_rule(string path)
    {
        var response = await _proxy.ExchangeAsync($"GET {path} HTTP/1.1\r\nHost: up.test\r\n\r\n");
        Assert.That(response, Does.StartWith("HTTP/1.1 403 "), response);
        Assert.That(_proxy.Received, Is.Empty);
        Assert.That(_proxy.Events().Any(e => e.Kind == "net.http" && e.Decision == "deny" && e.Net.Path == path));
    }

    [TestCase("inner.test", "10.0.0.1 is a private address")]
    [TestCase("mapped.test", "192.168.1.1 (embedded in ::ffff:192.168.1.1) is a private address")]
    [TestCase("meta.test", "cloud metadata")]
    [TestCase("peer.test", "Hive's sandbox network")]
    public async Task Inward_upstream_addresses_are_refused_before_connecting(string host, string reason)
    {
        var response = await _proxy.ExchangeAsync($"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n", host, 80);
        Assert.That(response, Does.StartWith("HTTP/1.1 502 ").And.Contain("X-Hive-Egress: deny").And.Contain(reason), response);
        var deny = _proxy.Events().Single(e => e.Kind == "net.http" && e.Decision == "deny");
        Assert.That((deny.Net.Rule, deny.Net.Status), Is.EqualTo(("upstream address", 502)));
        Assert.That(deny.Net.Error, Does.Contain(reason).And.Contain("refused before connecting"));
    }

    [Test]
    public async Task A_secret_goes_only_to_its_hosts()
    {
        _proxy.SetSecret("tok", "sk-harness-0123456789", ["other.test"], allowHttp: true);
        var response = await _proxy.ExchangeAsync("GET / HTTP/1.1\r\nHost: sec.test\r\n\r\n", "sec.test");
        Assert.That(response, Does.StartWith("HTTP/1.1 403 ").And.Contain("secret 'tok' may not be sent to sec.test"), response);
        Assert.That(_proxy.Received, Is.Empty);
        var deny = _proxy.Events().Single(e => e.Kind == "net.http" && e.Decision == "deny");
        Assert.That(deny.Net.Rule, Is.EqualTo("secret tok"));
        Assert.That(deny.ToString(), Does.Not.Contain("sk-harness"));
    }

    [Test]
    public async Task A_secret_goes_over_plain_HTTP_only_when_it_allows_it()
    {
        _proxy.SetSecret("tok", "sk-harness-0123456789", ["sec.test"], allowHttp: false);
        var refused = await _proxy.ExchangeAsync("GET / HTTP/1.1\r\nHost: sec.test\r\n\r\n", "sec.test");
        Assert.That(refused, Does.StartWith("HTTP/1.1 403 ").And.Contain("only be sent over TLS"), refused);
        Assert.That(_proxy.Received, Is.Empty);

        _proxy.SetSecret("tok", "sk-harness-0123456789-http", ["sec.test"], allowHttp: true);
        var sent = await _proxy.ExchangeAsync("GET / HTTP/1.1\r\nHost: sec.test\r\n\r\n", "sec.test");
        Assert.That(sent, Does.StartWith("HTTP/1.1 200 "), sent);
        Assert.That(_proxy.Received, Does.Contain("Authorization: Bearer sk-harness-0123456789-http"));
        Assert.That(string.Join('\n', _proxy.Events().Select(e => e.ToString())), Does.Not.Contain("sk-harness"));
    }

    [Test]
    public async Task A_plain_value_file_is_never_injected()
    {
        File.WriteAllText(Path.Combine(_proxy.SecretsDir, "tok"), "sk-legacy-value-0123");
        var response = await _proxy.ExchangeAsync("GET / HTTP/1.1\r\nHost: sec.test\r\n\r\n", "sec.test");
        Assert.That(response, Does.StartWith("HTTP/1.1 502 ").And.Contain("not bound to any host"), response);
        Assert.That(_proxy.Received, Is.Empty);
    }
}
