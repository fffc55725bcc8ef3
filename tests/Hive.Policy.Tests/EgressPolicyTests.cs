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
    [TestCase("/a%20b", "/a b")]
    [TestCase("/a%3Ab", "/a:b")]
    [TestCase("/caf%C3%A9", "/café")]
    [TestCase("/a;v=1/b", "/a;v=1/b")]
    [TestCase("/public/..;/admin", null)]
    [TestCase("/public/.;x/admin", null)]
    [TestCase("/public/;x/admin", null)]
    [TestCase("/public/x/;", null)]
    [TestCase("/public/%2E%2E/admin", null)]
    [TestCase("/public/%2e/admin", null)]
    [TestCase("/a%3bb", null)]
    [TestCase("/a%5cb", null)]
    [TestCase("/a%25%32%65", null)]
    [TestCase("/a%00", null)]
    [TestCase("/a%0a", null)]
    [TestCase("/%c0%ae%c0%ae/admin", null)] // overlong UTF-8 for "..": not UTF-8
    [TestCase("/%e0%80%af", null)] // overlong '/'
    [TestCase("/admin#x", null)]
    [TestCase("/a b", null)]
    [TestCase("/caf\u00e9", null)]
    [TestCase("//admin", null)]
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

    private static readonly EgressPolicy Paths = EgressPolicy.Parse("""
        {
          "deny": [{"host": "api.test", "paths": ["/admin/**", "/Internal/*"]}],
          "allow": [{"host": "api.test", "paths": ["/public/**", "/admin/**", "/Internal/**", "/files/*"]}]
        }
        """);

    [TestCase("/public/a", true)]
    [TestCase("/admin/x", false)]
    [TestCase("/ADMIN/x", false)] // deny rules match case-insensitively
    [TestCase("/Admin", false)]
    [TestCase("/%61dmin/x", false)] // decoded before matching
    [TestCase("/%41DMIN/x", false)]
    [TestCase("/admin;jsessionid=1/x", false)] // parameters dropped by some servers: deny sees that reading too
    [TestCase("/ADMIN;x/y", false)]
    [TestCase("/internal/x", false)]
    [TestCase("/public/..;/admin", false)] // refused: a dot segment before ';'
    [TestCase("/public/%2e%2e/admin", false)]
    [TestCase("/public//admin", false)]
    [TestCase("/public\\..\\admin", false)]
    [TestCase("/PUBLIC/a", false)] // allow rules match exactly
    [TestCase("/files/a;b", true)] // both readings ("/files/a;b", "/files/a") inside the rule
    [TestCase("/files/a;b/c", false)] // "/files/a/c" is outside
    public void Path_readings_cannot_pass_a_deny_rule_or_leave_an_allow_rule(string path, bool allowed)
    {
        var decision = Paths.DecideRequest("api.test", 443, "GET", path);
        Assert.That(decision.Allowed, Is.EqualTo(allowed), decision.Rule);
    }

    [Test]
    public void Rules_injecting_secrets_are_listed_per_rule()
    {
        Assert.That(Policy.SecretUses().Select(u => (u.Rule.Host, u.Secret)), Is.EquivalentTo(new[] { ("api.openai.com", "openai"), ("api.openai.com", "key") }));
        Assert.That(EgressPolicy.SecretNamesIn("a ${secret:x} b ${secret:y.z}"), Is.EqualTo(new[] { "x", "y.z" }));
    }
}
