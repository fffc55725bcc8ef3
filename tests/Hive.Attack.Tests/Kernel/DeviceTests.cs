namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// Device nodes. CAP_MKNOD is kept (Docker's default set), so the sandbox can create any node
/// in its own files — opening it is what the devices cgroup refuses: the host's disk (read
/// every file on the host), /dev/kmsg (write into the host's kernel log), /dev/mem.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class DeviceTests
{
    /// <summary>major:minor of the block device the host's root file system is on.</summary>
    private static (int Major, int Minor) HostRootDevice()
    {
        var root = File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')).First(f => f[4] == "/");
        var parts = root[2].Split(':');
        return (int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Test]
    [Defence("devices cgroup: only the standard nodes may be opened")]
    public async Task The_host_disk_cannot_be_read_through_a_node_made_inside()
    {
        var (major, minor) = HostRootDevice();
        Assume.That(major, Is.Not.Zero, "the host's root is on a block device");
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"""
            import stat
            p = '/tmp/hostdisk-{major}-{minor}'
            if not os.path.exists(p):
                os.mknod(p, stat.S_IFBLK | 0o600, os.makedev({major}, {minor}))
            print(try_open(p))
            """);
        Assert.That(outcome, Is.EqualTo("EPERM"));
    }

    [TestCase("kmsg (write into the host's kernel log)", 1, 11, "os.O_WRONLY")]
    [TestCase("mem", 1, 1, "os.O_RDONLY")]
    [TestCase("port", 1, 4, "os.O_RDONLY")]
    [Defence("devices cgroup: only the standard nodes may be opened")]
    public async Task Host_character_device_cannot_be_opened(string device, int major, int minor, string flags)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"""
            import stat
            p = '/tmp/dev-{major}-{minor}'
            if not os.path.exists(p):
                os.mknod(p, stat.S_IFCHR | 0o600, os.makedev({major}, {minor}))
            print(try_open(p, {flags}))
            """);
        Assert.That(outcome, Is.EqualTo("EPERM"), device);
    }
}
