using System.Text.Json;
using Hive.Policy.Net;

namespace Hive.Policy.Tests;

public sealed class HostPatternTests
{
    private static HostPattern P(string pattern) => HostPattern.TryParse(pattern, out var error) ?? throw new AssertionException(error!);

    [TestCase("api.github.com", "api.github.com", true)]
    [TestCase("*.openai.com", "api.openai.com", true)]
    [TestCase("*.openai.com", "*.openai.com", true)]
    [TestCase("*.openai.com", "*.api.openai.com", true)]
    [TestCase("*.openai.com", "eu-*.openai.com", true)]
    [TestCase("**.openai.com", "*.openai.com", true)]
    [TestCase("**", "anything.test", true)]
    [TestCase("**", "*.anything.test", true)]
    [TestCase("api.github.com", "*.github.com", false)]
    [TestCase("*.openai.com", "openai.com", false)]
    [TestCase("*.openai.com", "*openai.com", false)]
    [TestCase("*.openai.com", "**", false)]
    [TestCase("*.openai.com", "api.openai.com.evil.test", false)]
    [TestCase("api-*.example.com", "api-*.example.com", true)]
    [TestCase("api-*.example.com", "api-eu*.example.com", false)] // covered in fact; too clever to claim
    [TestCase("*.example.com", "*.example.com.evil.test", false)]
    public void Coverage_is_conservative(string secretHost, string ruleHost, bool covered) =>
        Assert.That(P(secretHost).Covers(P(ruleHost)), Is.EqualTo(covered));

    [Test]
    public void Stored_secrets_are_bound_to_hosts_and_TLS()
    {
        var secret = StoredSecret.Parse(StoredSecret.Serialize("sk-1234", ["api.github.com", "*.openai.com"], allowHttp: false));
        Assert.That((secret.Value, secret.Bound, secret.AllowHttp), Is.EqualTo(("sk-1234", true, false)));
        Assert.That(secret.RefusalFor("t", "api.github.com", tls: true), Is.Null);
        Assert.That(secret.RefusalFor("t", "a.b.openai.com", tls: true), Is.Null);
        Assert.That(secret.RefusalFor("t", "github.com", tls: true), Does.Contain("may not be sent to github.com"));
        Assert.That(secret.RefusalFor("t", "api.github.com", tls: false), Does.Contain("only be sent over TLS"));
        Assert.That(secret.Covers(P("*.openai.com")), Is.True);
        Assert.That(secret.Covers(P("*.github.com")), Is.False);

        var http = StoredSecret.Parse(StoredSecret.Serialize("sk-1234", ["api.test"], allowHttp: true));
        Assert.That(http.RefusalFor("t", "api.test", tls: false), Is.Null);
    }

    [TestCase("sk-plain-value")]
    [TestCase("{\"value\": \"x\"}")] // JSON, but not the bound form
    [TestCase("{not json")]
    public void Plain_value_files_are_never_injected(string text)
    {
        var secret = StoredSecret.Parse(text);
        Assert.That((secret.Value, secret.Bound), Is.EqualTo((text, false)));
        Assert.That(secret.RefusalFor("old", "api.test", tls: true), Does.Contain("not bound to any host"));
        Assert.That(secret.Covers(P("api.test")), Is.False);
    }

    [Test]
    public void A_damaged_host_list_binds_to_nothing()
    {
        var secret = StoredSecret.Parse("""{"value": "sk-1234", "hosts": ["api.test", "1.2.3.4"]}""");
        Assert.That(secret.Bound, Is.True);
        Assert.That(secret.RefusalFor("t", "api.test", tls: true), Does.Contain("may not be sent"));
    }

    [TestCase("[]", "1 to 64")]
    [TestCase("\"api.test\"", "1 to 64")]
    [TestCase("[1]", "entries must be strings")]
    [TestCase("[\"10.0.0.1\"]", "IP address")]
    [TestCase("[\"a..b\"]", "not a host name")]
    public void Host_lists_are_validated(string json, string error)
    {
        var errors = new List<string>();
        using var doc = JsonDocument.Parse(json);
        StoredSecret.ParseHosts(doc.RootElement, errors);
        Assert.That(errors, Has.Some.Contains(error));
    }
}
