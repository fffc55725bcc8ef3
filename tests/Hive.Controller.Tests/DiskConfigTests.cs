using System.Text.Json;
using Hive.Controller.Api;
using Hive.Controller.Hosting;
using Hive.Controller.Sandboxes.Config;

namespace Hive.Controller.Tests;

/// <summary><c>disk</c>, workspace <c>quota</c> and the operator's disk options.</summary>
public sealed class DiskConfigTests
{
    private const long HostMemory = 8L << 30;

    private static readonly DiskSettings Disks = new(10L << 30, 2L << 30, 65536, 100L << 30);

    private static CreateSandboxRequest Parse(string json) => JsonSerializer.Deserialize<CreateSandboxRequest>(json, ApiJson.Options)!;

    [Test]
    public void Disk_defaults_to_the_operators_and_has_64Ki_inodes_per_GiB()
    {
        var config = SandboxConfigValidator.Validate(Parse("{}"), "a", HostMemory, 2, Disks);
        Assert.That((config.Disk, config.DiskInodes), Is.EqualTo(("10g", 655360L)));
        var small = SandboxConfigValidator.Validate(Parse("""{"disk": "64m"}"""), "a", HostMemory, 2, Disks);
        Assert.That((small.DiskBytes, small.DiskInodes), Is.EqualTo((64L << 20, 4096L)));
        var bytes = SandboxConfigValidator.Validate(Parse("""{"disk": 100000000}"""), "a", HostMemory, 2, Disks);
        Assert.That(bytes.DiskBytes % 4096, Is.Zero, "rounded down to whole 4 KiB blocks");
    }

    [TestCase(64L << 20, 32L << 20)]
    [TestCase(512L << 20, 64L << 20)]
    [TestCase(4L << 30, 64L << 20)]
    public void Shm_is_half_the_memory_up_to_64m(long memory, long shm) =>
        Assert.That(new SandboxConfig { Name = "a", MemoryBytes = memory }.ShmBytes, Is.EqualTo(shm));

    [TestCase("""{"disk": "16m"}""", "disk must be between 32m and 100g")]
    [TestCase("""{"disk": "101g"}""", "disk must be between 32m and 100g")]
    [TestCase("""{"disk": "ten"}""", "invalid disk 'ten'")]
    [TestCase("""{"fs": [{"mount": "/w", "quota": "1k"}]}""", "fs[0].quota must be between")]
    [TestCase("""{"fs": [{"mount": "/w", "root": "/srv/x", "quota": "1g"}]}""", "has no quota")]
    public void Bad_sizes_are_refused(string json, string message)
    {
        var ex = Assert.Throws<ApiException>(() => SandboxConfigValidator.Validate(Parse(json), "a", HostMemory, 2, Disks));
        Assert.That(ex!.Message, Does.Contain(message));
    }

    [Test]
    public void An_explicit_quota_is_kept_with_its_inodes_and_an_absent_one_is_resolved_later()
    {
        var config = SandboxConfigValidator.Validate(Parse("""{"fs": [{"mount": "/w", "quota": "2g"}, {"mount": "/x"}]}"""), "a", HostMemory, 2, Disks);
        Assert.That((config.Fs[0].Quota, config.Fs[0].QuotaInodes), Is.EqualTo((2L << 30, 131072L)));
        Assert.That(config.Fs[1].Quota, Is.Null);
    }

    [Test]
    public void Get_or_create_compares_disk_and_only_the_quotas_asked_for()
    {
        var created = SandboxConfigValidator.Validate(Parse("""{"disk": "1g", "fs": [{"mount": "/w"}]}"""), "a", HostMemory, 2, Disks);
        var existing = created with { Fs = [created.Fs[0] with { Quota = 3L << 30, QuotaInodes = 196608 }] }; // as resolved at create
        string[] Diffs(string json)
        {
            var request = Parse(json);
            return [.. SandboxConfigValidator.Differences(request, SandboxConfigValidator.Validate(request, "a", HostMemory, 2, Disks), existing)];
        }

        Assert.That(Diffs("""{"fs": [{"mount": "/w"}]}"""), Is.Empty, "no quota asked: whatever it has");
        Assert.That(Diffs("""{"disk": "1g", "fs": [{"mount": "/w", "quota": "3g"}]}"""), Is.Empty);
        Assert.That(Diffs("""{"disk": "2g"}"""), Has.One.Contains("disk is 1g, requested 2g"));
        Assert.That(Diffs("""{"fs": [{"mount": "/w", "quota": "4g"}]}"""), Has.One.StartsWith("fs is"));
    }

    [Test]
    public void Operator_disk_options_parse_and_are_checked()
    {
        var (options, errors, _) = ControllerConfiguration.Load(["--default-disk", "2g", "--default-workspace-quota=512m"], new Dictionary<string, string> { ["HIVE_DISK_INODES_PER_GIB"] = "16384" }, "/opt/hive/controller");
        Assert.That(errors, Is.Empty);
        Assert.That((options!.DefaultDiskBytes, options.DefaultWorkspaceQuotaBytes, options.DiskInodesPerGiB), Is.EqualTo((2L << 30, 512L << 20, 16384L)));

        (_, errors, _) = ControllerConfiguration.Load(["--default-disk", "1m", "--default-workspace-quota", "x", "--disk-inodes-per-gib", "12"], new Dictionary<string, string>(), "/opt/hive/controller");
        Assert.That(errors, Has.Count.EqualTo(3));
    }
}
