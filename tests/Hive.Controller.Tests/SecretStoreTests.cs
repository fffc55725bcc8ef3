using Hive.Controller.Secrets;
using Hive.Policy.Net;

namespace Hive.Controller.Tests;

public sealed class SecretStoreTests
{
    private string _dir = null!;
    private SecretStore _store = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("hive-secrets-").FullName;
        _store = new SecretStore(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static EgressPolicy Rules(string host, string secret) =>
        EgressPolicy.Parse("""{"allow": [{"host": "HOST", "inject": {"headers": {"Authorization": "Bearer ${secret:NAME}"}, "query": {"k": "${secret:NAME}"}}}]}""".Replace("HOST", host, StringComparison.Ordinal).Replace("NAME", secret, StringComparison.Ordinal));

    [Test]
    public async Task Stored_secrets_are_private_files_with_their_hosts()
    {
        Assert.That(await _store.WriteAsync("gh", "ghp-0123456789", ["api.github.com"], allowHttp: false, CancellationToken.None), Is.False);
        Assert.That(await _store.WriteAsync("gh", "ghp-9876543210", ["api.github.com", "*.github.com"], allowHttp: false, CancellationToken.None), Is.True);
        Assert.That(File.GetUnixFileMode(Path.Combine(_dir, "gh")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        Assert.That(File.GetUnixFileMode(_dir), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
        var secret = _store.Read("gh")!;
        Assert.That((secret.Value, secret.Bound), Is.EqualTo(("ghp-9876543210", true)));
        Assert.That(secret.Hosts!.Select(h => h.Pattern), Is.EqualTo(new[] { "api.github.com", "*.github.com" }));
        Assert.That(Directory.EnumerateFiles(_dir).Select(Path.GetFileName), Is.EqualTo(new[] { "gh" }), "no temporary file left");
    }

    [TestCase("api.github.com", "api.github.com", true)]
    [TestCase("*.github.com", "api.github.com", true)]
    [TestCase("api.github.com", "*.github.com", false)]
    [TestCase("api.github.com", "evil.test", false)]
    [TestCase("api.github.com", "**", false)]
    public async Task Rules_may_inject_a_secret_only_toward_its_hosts(string secretHost, string ruleHost, bool ok)
    {
        await _store.WriteAsync("tok", "tok-0123456789", [secretHost], allowHttp: false, CancellationToken.None);
        var errors = _store.CheckInjections(Rules(ruleHost, "tok"));
        if (ok)
        {
            Assert.That(errors, Is.Empty);
        }
        else
        {
            Assert.That(errors, Has.Count.EqualTo(1), "one error per rule and secret, not per use");
            Assert.That(errors[0], Does.Contain($"egress.allow[0] injects secret 'tok' toward '{ruleHost}'").And.Contain($"its hosts: {secretHost}"));
        }
    }

    [Test]
    public void Missing_and_unbound_secrets_cannot_be_injected()
    {
        Assert.That(_store.CheckInjections(Rules("api.test", "nope")).Single(), Does.Contain("secret 'nope', which is not set"));
        File.WriteAllText(Path.Combine(_dir, "old"), "plain-old-value");
        Assert.That(_store.CheckInjections(Rules("api.test", "old")).Single(), Does.Contain("stored before secrets were bound to hosts"));
        Assert.That(_store.Read("old")!.Value, Is.EqualTo("plain-old-value"), "the old value is kept for re-binding");
    }
}
