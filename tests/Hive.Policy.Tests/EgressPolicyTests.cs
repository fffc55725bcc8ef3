using Hive.Policy.Net;

namespace Hive.Policy.Tests;

public sealed class EgressPolicyTests
{
    private static readonly EgressPolicy Policy = EgressPolicy.Parse("""
        {
          "deny": [{"host": "bad.pypi.org"}, {"host": "api.github.com", "methods": ["DELETE"]}],
          "allow": [
            {"host": "api.github.com", "methods": ["GET", "head"], "paths": ["/repos/**", "/users/*"]},
            {"host": "*.pypi.org"},
            {"host": "db.internal.test", "ports": [5432]},
            {"host": "api.openai.com", "inject": {"headers": {"Authorization": "Bearer ${secret:openai}"}, "query": {"k": "${secret:key}"}}}
          ]
        }
        """);

    [TestCase("api.github.com", true)]
    [TestCase("API.GITHUB.COM", false)] // names are lower-cased before they reach the policy
    [TestCase("files.pypi.org", true)]
    [TestCase("a.b.pypi.org", true)]
    [TestCase("pypi.org", false)]
    [TestCase("bad.pypi.org", false)]
    [TestCase("evilpypi.org", false)]
    [TestCase("api.github.com.evil.test", false)]
    [TestCase("db.internal.test", true)]
    [TestCase("other.test", false)]
    public void Hosts(string host, bool allowed) => Assert.That(Policy.DecideHost(host).Allowed, Is.EqualTo(allowed));

    [TestCase("GET", "/repos/hive/hive", true)]
    [TestCase("GET", "/repos", true)]
    [TestCase("HEAD", "/users/alice", true)]
    [TestCase("GET", "/users/alice/repos", false)]
    [TestCase("POST", "/repos/hive/hive", false)]
    [TestCase("DELETE", "/repos/hive/hive", false)]
    [TestCase("GET", "/orgs/x", false)]
    public void Requests(string method, string path, bool allowed)
    {
        var decision = Policy.DecideRequest("api.github.com", 443, method, path);
        Assert.That(decision.Allowed, Is.EqualTo(allowed), decision.Rule);
        Assert.That(decision.Rule, Is.Not.Empty);
    }

    [Test]
    public void DenyRulesWinAndAreNamed()
    {
        var decision = Policy.DecideRequest("api.github.com", 443, "DELETE", "/repos/a");
        Assert.That(decision, Is.EqualTo(new EgressDecision(false, "deny[1] api.github.com", Policy.Deny[1])));
    }

    [Test]
    public void RawTcpNeedsAPortRule()
    {
        Assert.That(Policy.DecideConnection("db.internal.test", 5432, raw: true).Allowed, Is.True);
        Assert.That(Policy.DecideConnection("db.internal.test", 5433, raw: true).Allowed, Is.False);
        Assert.That(Policy.DecideConnection("files.pypi.org", 443, raw: true).Allowed, Is.False);
        Assert.That(Policy.DecideConnection("files.pypi.org", 8443, raw: false).Allowed, Is.True);
        Assert.That(Policy.DecideConnection("db.internal.test", 5433, raw: false).Allowed, Is.False);
    }

    [Test]
    public void NoRulesMeansEverythingAndEmptyAllowMeansNothing()
    {
        Assert.That(EgressPolicy.AllowEverything.DecideRequest("x.test", 80, "POST", "/").Allowed, Is.True);
        var none = EgressPolicy.Parse("""{"allow": []}""");
        Assert.That(none.DecideHost("x.test").Allowed, Is.False);
        Assert.That(none.DecideRequest("x.test", 80, "GET", "/").Allowed, Is.False);
    }

    [Test]
    public void SecretsExpandOnlyWhenAllAreSet()
    {
        Assert.That(Policy.SecretNames(), Is.EquivalentTo(new[] { "openai", "key" }));
        Assert.That(EgressPolicy.ExpandSecrets("Bearer ${secret:openai}", n => n == "openai" ? "sk-1" : null, out var missing), Is.EqualTo("Bearer sk-1"));
        Assert.That(missing, Is.Null);
        Assert.That(EgressPolicy.ExpandSecrets("${secret:a}-${secret:b}", n => n == "a" ? "1" : null, out missing), Is.Null);
        Assert.That(missing, Is.EqualTo("b"));
    }

    [TestCase("/repos/a", "/repos/a")]
    [TestCase("/repos/%61", "/repos/a")]
    [TestCase("/a%20b", "/a%20b")]
    [TestCase("/repos/../admin", null)]
    [TestCase("/repos/./a", null)]
    [TestCase("/repos//a", null)]
    [TestCase("/repos/%2e%2e/admin", null)]
    [TestCase("/repos%2fadmin", null)]
    [TestCase("/a\\b", null)]
    [TestCase("/..", null)]
    [TestCase("/x/", "/x/")]
    [TestCase("relative", null)]
    [TestCase("/%zz", null)]
    public void CanonicalPaths(string raw, string? canonical) => Assert.That(EgressPolicy.CanonicalPath(raw), Is.EqualTo(canonical));

    [TestCase("""{"allow": [{"host": "1.2.3.4"}]}""", "IP address")]
    [TestCase("""{"allow": [{"host": "a..b"}]}""", "not a host name")]
    [TestCase("""{"allow": [{}]}""", "host is required")]
    [TestCase("""{"allow": [{"host": "x.test", "ports": [70000]}]}""", "port number")]
    [TestCase("""{"allow": [{"host": "x.test", "inject": {"headers": {"Content-Length": "1"}}}]}""", "cannot be set")]
    [TestCase("""{"allow": [{"host": "x.test", "inject": {"headers": {"X": "a\nb"}}}]}""", "single-line")]
    [TestCase("""{"allow": {"host": "x.test"}}""", "array")]
    [TestCase("""[1]""", "object")]
    public void InvalidPoliciesSayWhy(string json, string expected) =>
        Assert.That(() => EgressPolicy.Parse(json), Throws.TypeOf<EgressPolicyException>().With.Message.Contains(expected));

    [Test]
    public void HostNames()
    {
        Assert.That(EgressPolicy.IsValidHostName("api.github.com"), Is.True);
        Assert.That(EgressPolicy.IsValidHostName(new string('a', 64) + ".com"), Is.False);
        Assert.That(EgressPolicy.IsValidHostName("a_b.com"), Is.False);
        Assert.That(EgressPolicy.IsValidHostName(""), Is.False);
    }
}
