using System.Net.Http.Json;
using System.Text.Json;

namespace Hive.Attack.Tests.Net;

public sealed partial class EgressFromInsideTests
{
    [Test]
    [Category(From.Outside)]
    [Defence("a rule may inject a secret only toward hosts the secret is bound to (400 at create and PATCH)")]
    public async Task A_rule_sending_a_secret_to_another_host_is_refused()
    {
        var exfiltrate = new { allow = new object[] { new { host = "*.attack.test", inject = new { headers = new Dictionary<string, string> { ["X-Leak"] = "${secret:atk-tok}" } } } } };
        var name = Names.Unique("exfil");
        using (var created = await _controller.Http.PostAsJsonAsync("/api/v1/hiveboxes", new { name, egress = exfiltrate }))
        {
            var text = await created.Content.ReadAsStringAsync();
            Assert.That((int)created.StatusCode, Is.EqualTo(400), text);
            Assert.That(text, Does.Contain("egress.allow[0] injects secret 'atk-tok' toward '*.attack.test', where the secret may not be sent (its hosts: sec.attack.test)"));
        }

        using (var patched = await _controller.Http.PatchAsJsonAsync($"/api/v1/hiveboxes/{_attacker}", new { egress = exfiltrate }))
        {
            var text = await patched.Content.ReadAsStringAsync();
            Assert.That((int)patched.StatusCode, Is.EqualTo(400), text);
            Assert.That(text, Does.Contain("injects secret 'atk-tok' toward '*.attack.test'"));
        }

        var (status, _) = await _controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}");
        Assert.That(status, Is.EqualTo(404), "nothing was created");
        var (_, attacker) = await _controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{_attacker}");
        Assert.That(attacker.GetProperty("network").GetProperty("egress").GetRawText(), Does.Not.Contain("X-Leak"), "the attacker's rules are unchanged");
    }

    [Test]
    [Defence("SbxProxy checks a secret's hosts again on every request (a secret narrowed after the rule was made)")]
    public async Task A_secret_narrowed_after_the_rule_was_made_is_not_sent_there_any_more()
    {
        var url = $"https://narrow.attack.test:{_upstream.Https}/whoami";
        var (before, body) = await CurlAsync(url);
        Assert.That(before, Is.EqualTo("200 rc=0"), body);
        Assert.That(JsonDocument.Parse(body).RootElement.GetProperty("authorized").GetBoolean(), Is.True, "injected while narrow.attack.test is among its hosts");

        await PutSecretAsync("atk-narrow", new { hosts = new[] { "elsewhere.attack.test" } }, 200);
        try
        {
            var (after, refusal) = await CurlAsync(url);
            Assert.That(after, Is.EqualTo("403 rc=0"), refusal);
            Assert.That(refusal, Does.Contain("secret 'atk-narrow' may not be sent to narrow.attack.test (its hosts: elsewhere.attack.test)").And.Not.Contain(_secret));
            var denied = await DeniedAsync("net.http", e => Text(e, "host") == "narrow.attack.test" && Text(e, "rule") == "secret atk-narrow");
            Assert.That(denied.GetProperty("status").GetInt32(), Is.EqualTo(403));
            Assert.That(denied.GetRawText(), Does.Not.Contain(_secret));
        }
        finally
        {
            await PutSecretAsync("atk-narrow", new { hosts = new[] { "narrow.attack.test" } }, 200);
        }
    }

    [Test]
    [Defence("a secret is injected only over TLS unless it allows plain HTTP")]
    public async Task A_secret_is_not_sent_over_plain_HTTP()
    {
        var (plain, refusal) = await CurlAsync($"http://sec.attack.test:{_upstream.Http}/whoami");
        Assert.That(plain, Is.EqualTo("403 rc=0"), refusal);
        Assert.That(refusal, Does.Contain("secret 'atk-tok' may only be sent over TLS").And.Not.Contain(_secret));
        var denied = await DeniedAsync("net.http", e => Text(e, "host") == "sec.attack.test" && Text(e, "protocol") == "http");
        Assert.That((Text(denied, "rule"), denied.GetProperty("status").GetInt32()), Is.EqualTo(("secret atk-tok", 403)));

        var (tls, body) = await CurlAsync($"https://sec.attack.test:{_upstream.Https}/whoami");
        Assert.That(tls, Is.EqualTo("200 rc=0"), body);
        Assert.That(JsonDocument.Parse(body).RootElement.GetProperty("authorized").GetBoolean(), Is.True, "over TLS it is injected");
        using var all = await _controller.Http.GetAsync($"/api/v1/hiveboxes/{_attacker}/events?follow=false&format=jsonl");
        Assert.That(await all.Content.ReadAsStringAsync(), Does.Not.Contain(_secret), "no event carries the value");
    }
}
