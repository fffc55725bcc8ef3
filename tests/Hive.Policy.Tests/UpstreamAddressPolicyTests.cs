using System.Net;
using Hive.Policy.Net;

namespace Hive.Policy.Tests;

public sealed class UpstreamAddressPolicyTests
{
    private static readonly (IPNetwork, string)[] Pools = [(IPNetwork.Parse("10.220.0.0/16"), "Hive's sandbox network"), (IPNetwork.Parse("10.221.0.0/16"), "Hive's synthetic address pool")];

    private static UpstreamAddressPolicy Make(string allow = "", Func<IPAddress, bool>? host = null)
    {
        var errors = new List<string>();
        var allowed = UpstreamAddressPolicy.ParseCidrs(allow, errors);
        Assert.That(errors, Is.Empty);
        return new UpstreamAddressPolicy(Pools, allowed, host ?? (a => a.Equals(IPAddress.Parse("203.0.113.7")) || a.Equals(IPAddress.Parse("198.51.200.9"))));
    }

    [TestCase("10.220.0.2", "Hive's sandbox network")]
    [TestCase("10.221.0.9", "Hive's synthetic address pool")]
    [TestCase("10.0.0.1", "private")]
    [TestCase("172.16.5.4", "private")]
    [TestCase("172.31.255.255", "private")]
    [TestCase("192.168.1.1", "private")]
    [TestCase("100.64.0.1", "CGNAT")]
    [TestCase("100.127.255.254", "CGNAT")]
    [TestCase("169.254.1.1", "link-local")]
    [TestCase("169.254.169.254", "metadata")]
    [TestCase("169.254.170.2", "metadata")]
    [TestCase("100.100.100.200", "metadata")]
    [TestCase("127.0.0.1", "host itself")]
    [TestCase("127.8.8.8", "host itself")]
    [TestCase("0.0.0.0", "unspecified")]
    [TestCase("0.1.2.3", "unspecified")]
    [TestCase("224.0.0.1", "multicast")]
    [TestCase("239.255.255.250", "multicast")]
    [TestCase("255.255.255.255", "broadcast")]
    [TestCase("240.0.0.1", "reserved")]
    [TestCase("198.18.0.1", "benchmarking")]
    [TestCase("198.19.255.1", "benchmarking")]
    [TestCase("192.0.2.10", "documentation")]
    [TestCase("192.0.0.8", "IETF")]
    [TestCase("198.51.200.9", "host itself")] // one of the host's own interface addresses
    [TestCase("::", "unspecified")]
    [TestCase("::1", "host itself")]
    [TestCase("fe80::1", "link-local")]
    [TestCase("fc00::1", "unique local")]
    [TestCase("fd12:3456::1", "unique local")]
    [TestCase("fd00:ec2::254", "metadata")]
    [TestCase("fec0::1", "site-local")]
    [TestCase("ff02::1", "multicast")]
    [TestCase("100::1", "reserved IPv6")]
    [TestCase("2001:db8::1", "documentation")]
    [TestCase("2001::1", "Teredo")]
    [TestCase("::ffff:10.0.0.1", "private")]
    [TestCase("::ffff:127.0.0.1", "host itself")]
    [TestCase("::ffff:169.254.169.254", "metadata")]
    [TestCase("::ffff:10.220.0.2", "Hive's sandbox network")]
    [TestCase("::a00:1", "private")] // IPv4-compatible ::10.0.0.1
    [TestCase("64:ff9b::a9fe:a9fe", "metadata")] // NAT64 of 169.254.169.254
    [TestCase("64:ff9b::c0a8:101", "private")] // NAT64 of 192.168.1.1
    [TestCase("2002:a9fe:a9fe::1", "metadata")] // 6to4 of 169.254.169.254
    [TestCase("2002:0a00:0001::1", "private")] // 6to4 of 10.0.0.1
    [TestCase("2002:0adc:0002::1", "Hive's sandbox network")] // 6to4 of 10.220.0.2
    public void Inward_addresses_are_refused_and_say_why(string address, string why)
    {
        var refusal = Make().Refusal(IPAddress.Parse(address));
        Assert.That(refusal, Does.Contain(why), address);
    }

    [TestCase("93.184.216.34")]
    [TestCase("8.8.8.8")]
    [TestCase("100.63.255.255")]
    [TestCase("100.128.0.1")]
    [TestCase("172.15.0.1")]
    [TestCase("172.32.0.1")]
    [TestCase("2606:4700::1111")]
    [TestCase("::ffff:8.8.8.8")]
    [TestCase("64:ff9b::808:808")]
    [TestCase("2002:808:808::1")]
    public void Public_addresses_are_allowed(string address) => Assert.That(Make().Refusal(IPAddress.Parse(address)), Is.Null);

    [Test]
    public void The_operator_opens_ranges_but_never_Hives_pools()
    {
        var policy = Make("10.0.0.0/8, 192.168.0.0/16, fd00::/8, 169.254.0.0/16, 127.0.0.0/8");
        Assert.Multiple(() =>
        {
            Assert.That(policy.Refusal(IPAddress.Parse("10.1.2.3")), Is.Null);
            Assert.That(policy.Refusal(IPAddress.Parse("::ffff:10.1.2.3")), Is.Null);
            Assert.That(policy.Refusal(IPAddress.Parse("192.168.9.9")), Is.Null);
            Assert.That(policy.Refusal(IPAddress.Parse("fd12::1")), Is.Null);
            Assert.That(policy.Refusal(IPAddress.Parse("169.254.1.1")), Is.Null);
            Assert.That(policy.Refusal(IPAddress.Parse("10.220.0.2")), Does.Contain("Hive's sandbox network"), "inside an allowed range, still a sandbox");
            Assert.That(policy.Refusal(IPAddress.Parse("10.221.0.2")), Does.Contain("synthetic"));
            Assert.That(policy.Refusal(IPAddress.Parse("169.254.169.254")), Does.Contain("metadata"), "a metadata address needs an entry naming it exactly");
            Assert.That(policy.Refusal(IPAddress.Parse("fd00:ec2::254")), Does.Contain("metadata"));
            Assert.That(policy.Refusal(IPAddress.Parse("127.0.0.1")), Does.Contain("host itself"), "loopback needs an entry naming it exactly");
            Assert.That(policy.Refusal(IPAddress.Parse("172.16.0.1")), Does.Contain("private"), "not allowed");
        });

        var exact = Make("127.0.0.1/32, 169.254.169.254, 203.0.113.7/32");
        Assert.Multiple(() =>
        {
            Assert.That(exact.Refusal(IPAddress.Parse("127.0.0.1")), Is.Null);
            Assert.That(exact.Refusal(IPAddress.Parse("::ffff:127.0.0.1")), Is.Null);
            Assert.That(exact.Refusal(IPAddress.Parse("127.0.0.2")), Does.Contain("host itself"));
            Assert.That(exact.Refusal(IPAddress.Parse("169.254.169.254")), Is.Null);
            Assert.That(exact.Refusal(IPAddress.Parse("203.0.113.7")), Is.Null);
        });
    }

    [Test]
    public void Allow_lists_are_validated_with_clear_errors()
    {
        var errors = new List<string>();
        var parsed = UpstreamAddressPolicy.ParseCidrs("10.0.0.0/8, 127.0.0.1, fd00::/8, 10.0.0.1/8, 300.1.1.1/32, nonsense, 10.0.0.0/33", errors);
        Assert.That(parsed.Select(n => n.ToString()), Is.EqualTo(new[] { "10.0.0.0/8", "127.0.0.1/32", "fd00::/8" }));
        Assert.That(errors, Has.Count.EqualTo(4));
        Assert.That(errors[0], Does.Contain("'10.0.0.1/8' has bits set beyond its /8 prefix"));
        Assert.That(errors[1], Does.Contain("'300.1.1.1/32' is not a CIDR"));
    }

    [Test]
    public void Unknown_host_addresses_fail_closed()
    {
        var policy = Make(host: _ => true);
        Assert.That(policy.Refusal(IPAddress.Parse("93.184.216.34")), Does.Contain("host itself"));
    }
}
