using Hive.Controller.Hosting;

namespace Hive.Controller.Tests;

/// <summary><c>--userns</c>, <c>--userns-base</c>, <c>--userns-ranges</c> and the host's own ids the pool must stay clear of.</summary>
public sealed class UserNamespaceOptionsTests
{
    private static (ControllerOptions? Options, IReadOnlyList<string> Errors, bool Help) Parse(string[] args, Dictionary<string, string>? env = null) =>
        ControllerConfiguration.Load(args, env ?? new Dictionary<string, string>(), "/opt/hive/controller");

    [Test]
    public void User_namespaces_are_on_by_default_from_2_to_the_30th()
    {
        var (options, errors, _) = Parse([]);
        Assert.That(errors, Is.Empty);
        Assert.That((options!.UserNamespaces, options.UsernsBase, options.UsernsRanges), Is.EqualTo((true, 1u << 30, 4096)));
        Assert.That(options.IdLeasesDir, Is.EqualTo("/var/lib/hive/ids/leases"));
    }

    [Test]
    public void Flags_and_environment_set_the_pool()
    {
        var (options, errors, _) = Parse(["--userns-base", "2147483648"], new() { ["HIVE_USERNS_RANGES"] = "16", ["HIVE_USERNS"] = "off" });
        Assert.That(errors, Is.Empty);
        Assert.That((options!.UserNamespaces, options.UsernsBase, options.UsernsRanges), Is.EqualTo((false, 2147483648u, 16)));
    }

    [TestCase("--userns-base", "1000", "multiple of 65536")]
    [TestCase("--userns-base", "0", "multiple of 65536")]
    [TestCase("--userns-base", "1073741825", "multiple of 65536")]
    [TestCase("--userns-base", "-65536", "multiple of 65536")]
    [TestCase("--userns-ranges", "0", "between 1 and 65535")]
    [TestCase("--userns-ranges", "65536", "between 1 and 65535")]
    [TestCase("--userns", "maybe", "on or off")]
    public void A_bad_value_is_refused(string flag, string value, string message)
    {
        var (options, errors, _) = Parse([flag, value]);
        Assert.That(options, Is.Null);
        Assert.That(errors.Single(), Does.Contain(message));
    }

    [Test]
    public void A_pool_past_the_last_usable_id_is_refused()
    {
        var (options, errors, _) = Parse(["--userns-base", "4294901760", "--userns-ranges", "1"]);
        Assert.That(options, Is.Null);
        Assert.That(errors.Single(), Does.Contain("beyond the last usable id"));
    }

    [Test]
    public void Host_users_groups_and_subordinate_ranges_inside_the_pool_are_found()
    {
        var files = new Dictionary<string, string[]>
        {
            ["/etc/passwd"] = ["root:x:0:0:root:/root:/bin/bash", "svc:x:1073741900:100::/srv:/usr/sbin/nologin"],
            ["/etc/group"] = ["root:x:0:", "big:x:1073807361:"],
            ["/etc/subuid"] = ["alice:100000:65536", "bob:1073700000:65536"],
            ["/etc/subgid"] = ["alice:100000:65536"],
        };
        var found = HostIds.Overlaps(1u << 30, (1UL << 30) + (2 * 65536), path => files.GetValueOrDefault(path));
        Assert.That(found, Is.EqualTo(new[]
        {
            "/etc/passwd: 'svc' has id 1073741900",
            "/etc/group: 'big' has id 1073807361",
            "/etc/subuid: 'bob' has ids 1073700000-1073765535",
        }));
    }

    [Test]
    public void This_hosts_own_ids_are_clear_of_the_default_pool()
    {
        Assert.That(HostIds.Overlaps(1u << 30, (1UL << 30) + (4096UL * 65536)), Is.Empty);
    }
}
