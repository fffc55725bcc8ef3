using Hive.Controller.Api.Access;
using Hive.Controller.Hosting;
using Microsoft.AspNetCore.Http;

namespace Hive.Controller.Tests;

public sealed class AccessTests
{
    [TestCase(null, null, true)]
    [TestCase("http://127.0.0.1:7070", null, true)]
    [TestCase("http://LOCALHOST:7070", null, false)]
    [TestCase(null, "same-origin", true)]
    [TestCase(null, "none", true)]
    [TestCase("https://evil.example", null, false)]
    [TestCase("null", null, false)]
    [TestCase("http://127.0.0.1:7071", null, false)]
    [TestCase("http://127.0.0.1:7070/path", null, false)]
    [TestCase("http://user@127.0.0.1:7070", null, false)]
    [TestCase("file://", null, false)]
    [TestCase(null, "cross-site", false)]
    [TestCase(null, "same-site", false)]
    [TestCase("http://127.0.0.1:7070", "cross-site", false)]
    public void Cross_origin_requests_are_told_apart(string? origin, string? site, bool allowed)
    {
        var request = new DefaultHttpContext().Request;
        request.Host = new HostString("127.0.0.1:7070");
        if (origin is not null)
        {
            request.Headers.Origin = origin;
        }

        if (site is not null)
        {
            request.Headers["Sec-Fetch-Site"] = site;
        }

        Assert.That(SameOriginRequirement.Refusal(request) is null, Is.EqualTo(allowed));
    }

    [Test]
    public void A_host_without_a_port_means_the_default_port_of_the_origins_scheme()
    {
        var request = new DefaultHttpContext().Request;
        request.Host = new HostString("hive.example");
        request.Headers.Origin = "https://hive.example";
        Assert.That(SameOriginRequirement.Refusal(request), Is.Null, "behind a TLS-terminating proxy");
        request.Headers.Origin = "https://hive.example:8443";
        Assert.That(SameOriginRequirement.Refusal(request), Is.Not.Null);
    }

    [Test]
    public void Without_a_key_only_loopback_names_and_the_allowed_list_are_answered()
    {
        var patterns = HostCheck.Patterns(null, "127.0.0.2", ["*.hive.internal"])!;
        Assert.Multiple(() =>
        {
            foreach (var host in new[] { "localhost:7070", "127.0.0.1", "[::1]:7070", "127.0.0.2:7070", "a.hive.internal" })
            {
                Assert.That(HostString.MatchesAny(host, patterns), Is.True, host);
            }

            foreach (var host in new[] { "evil.example:7070", "127.0.0.1.evil.example", "localhost.evil.example", "hive.internal" })
            {
                Assert.That(HostString.MatchesAny(host, patterns), Is.False, host);
            }
        });
        Assert.That(HostCheck.Patterns("a-key-0123456789", "0.0.0.0", []), Is.Null, "with a key and no list, any name");
        Assert.That(HostCheck.Patterns("a-key-0123456789", "0.0.0.0", ["hive.example"])!.Select(p => p.Value), Does.Contain("hive.example").And.Not.Contain("0.0.0.0"));
    }

    [Test]
    public void Allowed_hosts_are_names_not_urls()
    {
        var (options, errors, _) = ControllerConfiguration.Load(["--allowed-hosts", "Hive.Example, *.sandbox.test,[::1],10.0.0.1"], new Dictionary<string, string>(), "/opt/hive/controller");
        Assert.That(errors, Is.Empty);
        Assert.That(options!.AllowedHosts, Is.EqualTo(new[] { "hive.example", "*.sandbox.test", "[::1]", "10.0.0.1" }));

        (_, errors, _) = ControllerConfiguration.Load([], new Dictionary<string, string> { ["HIVEBOX_ALLOWED_HOSTS"] = "http://x.example,x.example:80,*,-bad.example" }, "/opt/hive/controller");
        Assert.That(errors, Has.Count.EqualTo(4));
    }
}
