using Hive.Controller.Hosting;

namespace Hive.Controller.Tests;

public sealed class OptionsTests
{
    private static (ControllerOptions? Options, IReadOnlyList<string> Errors, bool Help) Parse(string[] args, Dictionary<string, string>? env = null) =>
        ControllerConfiguration.Load(args, env ?? new Dictionary<string, string>(), "/opt/hive/controller");

    [Test]
    public void Defaults()
    {
        var (options, errors, _) = Parse([]);
        Assert.That(errors, Is.Empty);
        Assert.That(options!.Port, Is.EqualTo(7070));
        Assert.That(options.EffectiveHost, Is.EqualTo("127.0.0.1"), "no key: loopback only");
        Assert.That(options.DataDir, Is.EqualTo("/var/lib/hive"));
        Assert.That(options.SbxdPath, Is.EqualTo("/opt/hive/sbxd/hive-sbxd"));
    }

    [Test]
    public void Flags_override_environment()
    {
        var env = new Dictionary<string, string> { ["HIVEBOX_API_KEY"] = "env-key-123456", ["HIVEBOX_PORT"] = "8080", ["HIVE_DATA_DIR"] = "/srv/hive" };
        var (options, errors, _) = Parse(["--port=9090", "--api-key", "flag-key-123456"], env);
        Assert.That(errors, Is.Empty);
        Assert.That(options!.Port, Is.EqualTo(9090));
        Assert.That(options.ApiKey, Is.EqualTo("flag-key-123456"));
        Assert.That(options.DataDir, Is.EqualTo("/srv/hive"));
        Assert.That(options.EffectiveHost, Is.EqualTo("0.0.0.0"), "with a key the API is reachable from outside");
    }

    [Test]
    public void Every_problem_is_reported()
    {
        var (options, errors, _) = Parse(["--port", "70000", "--bogus", "x", "--api-key", "short", "stray"]);
        Assert.That(options, Is.Null);
        Assert.That(errors, Has.Count.EqualTo(5), string.Join("\n", errors)); // port, --bogus, its stray value, short key, stray
    }

    [Test]
    public void Refuses_a_public_address_without_a_key()
    {
        var (options, errors, _) = Parse(["--host", "0.0.0.0"]);
        Assert.That(options, Is.Null);
        Assert.That(errors.Single(), Does.Contain("without an API key"));
    }

    [Test]
    public void Network_options()
    {
        var (options, errors, _) = Parse([]);
        Assert.That(errors, Is.Empty);
        Assert.That((options!.NetPool, options.SyntheticPool, options.SbxProxyPath), Is.EqualTo(("10.213.0.0/16", "10.214.0.0/16", "/opt/hive/sbxproxy/hive-sbxproxy")));
        Assert.That(options.SecretsDir, Is.EqualTo("/var/lib/hive/secrets"));

        (options, errors, _) = Parse(["--net-pool", "10.50.0.0/20", "--egress-resolve", "API.example.test=127.0.0.1, db.test=127.0.0.2"], new() { ["HIVE_NET_SYNTHETIC"] = "10.51.0.0/16" });
        Assert.That(errors, Is.Empty);
        Assert.That((options!.NetPool, options.SyntheticPool), Is.EqualTo(("10.50.0.0/20", "10.51.0.0/16")));
        Assert.That(options.EgressResolve, Is.EquivalentTo(new Dictionary<string, string> { ["api.example.test"] = "127.0.0.1", ["db.test"] = "127.0.0.2" }));

        (options, errors, _) = Parse(["--net-pool", "10.0.0.0/31", "--net-synthetic", "fd00::/64", "--egress-resolve", "bad name=1.2.3.4,x.test=not-an-ip", "--egress-ca", "/nonexistent/ca.pem"]);
        Assert.That(options, Is.Null);
        Assert.That(errors, Has.Count.EqualTo(5), string.Join("\n", errors));
    }

    [Test]
    public void Egress_allow_cidrs_are_validated_at_start()
    {
        var (options, errors, _) = Parse(["--egress-allow-cidr", "127.0.0.1/32, 10.20.0.0/16,fd00::/8", "--egress-resolve", "v6.test=fd00::1,v4.test=10.20.0.5"]);
        Assert.That(errors, Is.Empty);
        Assert.That(options!.EgressAllowCidrs, Is.EqualTo(new[] { "127.0.0.1/32", "10.20.0.0/16", "fd00::/8" }));
        Assert.That(options.EgressResolve["v6.test"], Is.EqualTo("fd00::1"));

        (options, _, _) = Parse([], new() { ["HIVEBOX_EGRESS_ALLOW_CIDR"] = "192.168.0.0/16" });
        Assert.That(options!.EgressAllowCidrs, Is.EqualTo(new[] { "192.168.0.0/16" }));
        Assert.That(Parse([]).Options!.EgressAllowCidrs, Is.Empty, "nothing inward is allowed by default");

        (options, errors, _) = Parse(["--egress-allow-cidr", "10.1.2.3/8,nonsense,10.0.0.0/40"]);
        Assert.That(options, Is.Null);
        Assert.That(errors, Has.Count.EqualTo(3), string.Join("\n", errors));
        Assert.That(errors[0], Does.StartWith("--egress-allow-cidr: '10.1.2.3/8' has bits set beyond its /8 prefix"));
        Assert.That(errors[1], Does.StartWith("--egress-allow-cidr: 'nonsense' is not a CIDR"));
    }

    [Test]
    public void Help() => Assert.That(Parse(["--help"]).Help, Is.True);

    [Test]
    public void The_documented_prefix_wins_over_the_older_names_and_a_flag_over_both()
    {
        var env = new Dictionary<string, string> { ["HIVE_DATA_DIR"] = "/old", ["HIVEBOX_DATA_DIR"] = "/new", ["HIVE_SBXD_PATH"] = "/opt/sbxd", ["HIVEBOX_SBXFUSE_PATH"] = "/opt/fuse", ["HIVE_EVENTS_RATE"] = "7" };
        var (options, errors, _) = Parse([], env);
        Assert.That(errors, Is.Empty);
        Assert.That((options!.DataDir, options.SbxdPath, options.SbxFusePath, options.EventsRate), Is.EqualTo(("/new", "/opt/sbxd", "/opt/fuse", 7d)), "HIVEBOX_* over HIVE_*; the older names still work");

        (options, errors, _) = Parse(["--data-dir", "/flag"], env);
        Assert.That(errors, Is.Empty);
        Assert.That(options!.DataDir, Is.EqualTo("/flag"));
    }

    [Test]
    public void A_bad_value_names_its_flag_whichever_source_gave_it()
    {
        var (options, errors, _) = Parse([], new() { ["HIVEBOX_PORT"] = "http", ["HIVE_USAGE_INTERVAL"] = "0" });
        Assert.That(options, Is.Null);
        Assert.That(errors, Is.EqualTo(new[] { "--port: 'http' is not a port number (0-65535)", "--usage-interval: '0' is not a number in [0.2, 3600]" }));
    }

    [Test]
    public void An_empty_variable_is_unset_but_an_empty_flag_is_refused()
    {
        var (options, errors, _) = Parse([], new() { ["HIVEBOX_API_KEY"] = string.Empty, ["HIVE_DATA_DIR"] = string.Empty });
        Assert.That(errors, Is.Empty);
        Assert.That((options!.ApiKey, options.DataDir), Is.EqualTo(((string?)null, "/var/lib/hive")));

        (options, errors, _) = Parse(["--api-key="]);
        Assert.That(options, Is.Null);
        Assert.That(errors.Single(), Does.StartWith("--api-key:"), "an empty key on the command line is a mistake, not \"no key\"");
    }

    [Test]
    public void Variables_of_other_programs_and_unprefixed_names_are_not_options()
    {
        var (options, errors, _) = Parse([], new() { ["PORT"] = "1", ["DATA_DIR"] = "/elsewhere", ["HIVE_OUT"] = "/tmp/out", ["HIVEBOX_API_URL"] = "http://x", ["HIVEBOX_OPENCODE_MODEL"] = "m", ["HIVEBOX_DataDir"] = "/x" });
        Assert.That(errors, Is.Empty);
        Assert.That((options!.Port, options.DataDir), Is.EqualTo((7070, "/var/lib/hive")));
    }

    [TestCase("--Port", "1", "unknown option '--Port'")]
    [TestCase("--port", null, "option '--port' needs a value")]
    [TestCase("/port", "1", "unexpected argument '/port'")]
    [TestCase("-p", "1", "unexpected argument '-p'")]
    public void Malformed_command_lines_are_refused_not_skipped(string first, string? second, string message)
    {
        var (options, errors, _) = Parse(second is null ? [first] : [first, second]);
        Assert.That(options, Is.Null);
        Assert.That(errors[0], Is.EqualTo(message));
    }
}
