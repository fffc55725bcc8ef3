using System.Text.Json;
using Hive.Controller.Api;
using Hive.Controller.Sandboxes.Config;

namespace Hive.Controller.Tests;

public sealed class ConfigTests
{
    private const long HostMemory = 8L << 30;

    private static CreateSandboxRequest Parse(string json) => JsonSerializer.Deserialize<CreateSandboxRequest>(json, ApiJson.Options)!;

    [TestCase("512m", 512L << 20)]
    [TestCase("1g", 1L << 30)]
    [TestCase("1.5G", 3L << 29)]
    [TestCase("65536k", 64L << 20)]
    [TestCase("64MiB", 64L << 20)]
    [TestCase("1048576", 1L << 20)]
    public void Memory_sizes_parse(string text, long bytes)
    {
        Assert.That(MemorySize.TryParse(text, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(bytes));
    }

    [TestCase("")]
    [TestCase("-5m")]
    [TestCase("m")]
    [TestCase("12x")]
    [TestCase("1e9m")]
    [TestCase("99999999999999999999t")]
    public void Bad_memory_sizes_do_not_parse(string text) => Assert.That(MemorySize.TryParse(text, out _), Is.False);

    [TestCase(512L << 20, "512m")]
    [TestCase(1L << 30, "1g")]
    [TestCase((1L << 30) + (512L << 20), "1536m")]
    public void Memory_sizes_format(long bytes, string text) => Assert.That(MemorySize.Format(bytes), Is.EqualTo(text));

    [Test]
    public void Defaults_follow_the_seed()
    {
        var config = SandboxConfigValidator.Validate(CreateSandboxRequest.Empty, null, HostMemory, 2);
        Assert.Multiple(() =>
        {
            Assert.That(config.Name, Does.Match("^hb-[0-9a-f]{10}$"));
            Assert.That(config.Image, Is.EqualTo("base"));
            Assert.That(config.Memory, Is.EqualTo("512m"));
            Assert.That(config.Cpus, Is.EqualTo(1.0));
            Assert.That(config.Pids, Is.EqualTo(128));
            Assert.That(config.Network, Is.EqualTo("none"));
            Assert.That(config.TimeoutSeconds, Is.EqualTo(3600));
        });
    }

    [TestCase("""{"name": "ok-name_1.2"}""", true)]
    [TestCase("""{"name": "a"}""", true)]
    [TestCase("""{"name": "-lead"}""", false)]
    [TestCase("""{"name": "a..b"}""", false)]
    [TestCase("""{"name": "a/b"}""", false)]
    [TestCase("""{"name": "Caps"}""", false)]
    [TestCase("""{"memory": "16m"}""", false)]
    [TestCase("""{"memory": "9g"}""", false)]
    [TestCase("""{"memory": 67108864}""", true)]
    [TestCase("""{"memory": true}""", false)]
    [TestCase("""{"cpus": 0.001}""", false)]
    [TestCase("""{"cpus": 2}""", true)]
    [TestCase("""{"cpus": 3}""", false)]
    [TestCase("""{"pids": 63}""", false)]
    [TestCase("""{"pids": 64}""", true)]
    [TestCase("""{"pids": 32769}""", false)]
    [TestCase("""{"timeout": 86400}""", true)]
    [TestCase("""{"timeout": 86401}""", false)]
    [TestCase("""{"network": "isolated"}""", true)]
    [TestCase("""{"network": "shared", "group": "g1"}""", true)]
    [TestCase("""{"network": "isolated", "group": "g1"}""", false)]
    [TestCase("""{"network": "bridge"}""", false)]
    [TestCase("""{"network": "shared", "expose": [8080, 5432]}""", true)]
    [TestCase("""{"network": "shared", "expose": []}""", true)]
    [TestCase("""{"network": "shared", "expose": [0]}""", false)]
    [TestCase("""{"network": "shared", "expose": [65536]}""", false)]
    [TestCase("""{"network": "shared", "expose": [-1]}""", false)]
    [TestCase("""{"network": "shared", "expose": ["8080"]}""", false)]
    [TestCase("""{"network": "shared", "expose": [80.5]}""", false)]
    [TestCase("""{"network": "isolated", "expose": [8080]}""", false)]
    [TestCase("""{"expose": [8080]}""", false)]
    [TestCase("""{"egress": {"allow": [{"host": "api.github.com", "methods": ["GET"], "paths": ["/repos/**"]}, {"host": "*.pypi.org"}]}}""", true)]
    [TestCase("""{"egress": {"allow": []}}""", true)]
    [TestCase("""{"network": "none", "egress": {"allow": []}}""", false)]
    [TestCase("""{"egress": {"allow": [{"host": "10.0.0.1"}]}}""", false)]
    [TestCase("""{"egress": {"allow": [{"host": "a b"}]}}""", false)]
    [TestCase("""{"egress": {"allow": [{"host": "x.com", "ports": [0]}]}}""", false)]
    [TestCase("""{"egress": {"allow": [{"host": "x.com", "methods": ["get me"]}]}}""", false)]
    [TestCase("""{"egress": {"allow": [{"host": "x.com", "paths": ["relative"]}]}}""", false)]
    [TestCase("""{"egress": {"allow": [{"host": "x.com", "inject": {"headers": {"Host": "y"}}}]}}""", false)]
    [TestCase("""{"egress": {"allow": [{"host": "x.com", "inject": {"headers": {"Authorization": "Bearer ${env:HOME}"}}}]}}""", false)]
    [TestCase("""{"egress": {"allow": [{"host": "x.com", "inject": {"headers": {"Authorization": "Bearer ${secret:openai}"}}}]}}""", true)]
    [TestCase("""{"egress": {"deny": [{"host": "x.com", "inject": {"headers": {"A": "b"}}}]}}""", false)]
    [TestCase("""{"egress": {"permit": []}}""", false)]
    [TestCase("""{"image": "../x"}""", false)]
    [TestCase("""{"env": {"GOOD_1": "x"}}""", true)]
    [TestCase("""{"env": {"1BAD": "x"}}""", false)]
    [TestCase("""{"fs": []}""", true)]
    [TestCase("""{"fs": [{"mount": "/workspace"}]}""", true)]
    [TestCase("""{"fs": [{"backend": "local", "mount": "/workspace", "acls": [{"path": "/workspace/**", "access": "rw"}, {"path": "/workspace/secrets/**", "access": "deny"}]}]}""", true)]
    [TestCase("""{"fs": [{"mount": "/"}]}""", false)]
    [TestCase("""{"fs": [{"mount": "workspace"}]}""", false)]
    [TestCase("""{"fs": [{"mount": "/proc/x"}]}""", false)]
    [TestCase("""{"fs": [{"mount": "/w/../etc"}]}""", false)]
    [TestCase("""{"fs": [{"mount": "/w"}, {"mount": "/w/inner"}]}""", false)]
    [TestCase("""{"fs": [{"backend": "s3", "mount": "/w"}]}""", false)]
    [TestCase("""{"fs": [{"mount": "/w", "acls": [{"path": "/etc/**", "access": "rw"}]}]}""", false)]
    [TestCase("""{"fs": [{"mount": "/w", "acls": [{"path": "/w/**", "access": "write"}]}]}""", false)]
    [TestCase("""{"fs": [{"mount": "/w", "extra": 1}]}""", false)]
    public void Validation(string json, bool valid)
    {
        CreateSandboxRequest request;
        try
        {
            request = Parse(json);
        }
        catch (JsonException) when (!valid)
        {
            return; // rejected while reading the body (unknown field): a 400 too
        }

        if (valid)
        {
            Assert.That(() => SandboxConfigValidator.Validate(request, null, HostMemory, 2), Throws.Nothing);
        }
        else
        {
            var ex = Assert.Throws<ApiException>(() => SandboxConfigValidator.Validate(request, null, HostMemory, 2))!;
            Assert.That(ex.StatusCode, Is.EqualTo(400));
            Assert.That(ex.Message, Is.Not.Empty);
        }
    }

    [Test]
    public void All_problems_are_reported_at_once()
    {
        var ex = Assert.Throws<ApiException>(() => SandboxConfigValidator.Validate(Parse("""{"pids": 1, "timeout": 0, "cpus": 99}"""), null, HostMemory, 2))!;
        Assert.That(ex.Message, Does.Contain("pids").And.Contain("timeout").And.Contain("cpus"));
    }

    [Test]
    public void Unknown_fields_and_wrong_types_are_rejected_by_the_json_options()
    {
        Assert.Throws<JsonException>(() => Parse("""{"nmae": "x"}"""));
        Assert.Throws<JsonException>(() => Parse("""{"cpus": "1"}"""));
    }

    [Test]
    public void Get_or_create_differences_only_name_fields_given()
    {
        var existing = SandboxConfigValidator.Validate(Parse("""{"name": "x", "memory": "256m"}"""), null, HostMemory, 2);
        var same = Parse("""{"memory": "256m"}""");
        Assert.That(SandboxConfigValidator.Differences(same, SandboxConfigValidator.Validate(same, "x", HostMemory, 2), existing), Is.Empty);
        var omitted = CreateSandboxRequest.Empty;
        Assert.That(SandboxConfigValidator.Differences(omitted, SandboxConfigValidator.Validate(omitted, "x", HostMemory, 2), existing), Is.Empty);
        var other = Parse("""{"memory": "1g", "pids": 64}""");
        var diffs = SandboxConfigValidator.Differences(other, SandboxConfigValidator.Validate(other, "x", HostMemory, 2), existing);
        Assert.That(diffs, Has.Count.EqualTo(2));
    }

    [Test]
    public void Exposed_ports_are_kept_in_order_without_duplicates_and_compared_on_get_or_create()
    {
        var request = Parse("""{"name": "a", "network": "shared", "expose": [8080, 22, 8080]}""");
        var config = SandboxConfigValidator.Validate(request, null, HostMemory, 2);
        Assert.That(config.Expose, Is.EqualTo(new[] { 8080, 22 }));
        var other = SandboxConfigValidator.Validate(Parse("""{"name": "a", "network": "shared", "expose": [8080]}"""), null, HostMemory, 2);
        Assert.That(SandboxConfigValidator.Differences(request, config, other), Has.Some.Contains("expose"));
        var view = SandboxViews.Detail(new Hive.Controller.Sandboxes.Store.SandboxRecord { Config = config, Status = "running", CreatedAt = DateTimeOffset.UnixEpoch, ExpiresAt = DateTimeOffset.UnixEpoch }, DateTimeOffset.UnixEpoch);
        Assert.That(JsonSerializer.Serialize(view.Network, ApiJson.Options), Does.Contain("\"expose\":[8080,22]"));
    }
}
