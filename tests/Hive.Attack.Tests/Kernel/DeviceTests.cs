using System.Globalization;

namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// Device nodes: a host block device (read every file on it), /dev/kmsg (write into the host's
/// kernel log), /dev/mem, /dev/port. The sandbox cannot make one (no CAP_MKNOD, and in its user
/// namespace mknod(2) would want it in the host's: EPERM); behind
/// that, the devices cgroup refuses opening any but the standard nodes. The second wall is shown
/// with a node the host plants in the sandbox's root (mode 0666), as an image could ship one or a
/// kernel bug could make one.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class DeviceTests
{
    [Test]
    [Defence("user namespace and no CAP_MKNOD: no node can be made; devices cgroup: only the standard nodes may be opened")]
    public async Task A_host_block_device_cannot_be_read_through_a_node_made_inside()
    {
        // A loop device over a file of this test stands for the host's disks: its contents are known,
        // and the host can read it (this VM refuses opening its own virtio disk even to the host's root).
        var marker = "hive-host-disk-" + Guid.NewGuid().ToString("N");
        var image = Path.Combine(Path.GetTempPath(), $"hive-kernel-loop-{Guid.NewGuid():N}.img");
        var content = new byte[1 << 20];
        System.Text.Encoding.ASCII.GetBytes(marker).CopyTo(content, 0);
        await File.WriteAllBytesAsync(image, content);
        try
        {
            var (code, device, error) = await Host.RunAsync("losetup", "--find", "--show", "--read-only", image);
            Assume.That(code, Is.Zero, "a loop device could be set up: " + error);
            device = device.Trim();
            try
            {
                var numbers = File.ReadAllText($"/sys/class/block/{Path.GetFileName(device)}/dev").Trim().Split(':');
                Assert.That(System.Text.Encoding.ASCII.GetString(KernelSandboxes.ReadOnHost(device, marker.Length)), Is.EqualTo(marker), "the host reads it");
                var planted = await PlantAsync("b", int.Parse(numbers[0], CultureInfo.InvariantCulture), int.Parse(numbers[1], CultureInfo.InvariantCulture));
                var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"""
                    import stat
                    try:
                        os.mknod('/tmp/made-inside', stat.S_IFBLK | 0o600, os.makedev({numbers[0]}, {numbers[1]}))
                        print('OK')
                    except OSError as e:
                        print(name(e))
                    try:
                        print(open('{planted}', 'rb').read({marker.Length}).decode())
                    except OSError as e:
                        print(name(e))
                    """);
                Assert.That(outcome, Is.EqualTo("EPERM\nEPERM"), "mknod (no CAP_MKNOD), then opening the planted node (devices cgroup)");
            }
            finally
            {
                await Host.RunAsync("losetup", "--detach", device);
            }
        }
        finally
        {
            File.Delete(image);
        }
    }

    [TestCase("kmsg (write into the host's kernel log)", 1, 11, "os.O_WRONLY")]
    [TestCase("mem", 1, 1, "os.O_RDONLY")]
    [TestCase("port", 1, 4, "os.O_RDONLY")]
    [Defence("user namespace and no CAP_MKNOD: no node can be made; devices cgroup: only the standard nodes may be opened")]
    public async Task Host_character_device_cannot_be_opened(string device, int major, int minor, string flags)
    {
        var planted = await PlantAsync("c", major, minor);
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"""
            import stat
            try:
                os.mknod('/tmp/made-{major}-{minor}', stat.S_IFCHR | 0o600, os.makedev({major}, {minor}))
                print('OK')
            except OSError as e:
                print(name(e))
            print(try_open('{planted}', {flags}))
            """);
        Assert.That(outcome, Is.EqualTo("EPERM\nEPERM"), device + ": mknod (no CAP_MKNOD), then opening the planted node (devices cgroup)");
    }

    /// <summary>The host makes a device node (mode 0666) in the sandbox's /tmp, through its init's root; returns its path inside.</summary>
    private static async Task<string> PlantAsync(string type, int major, int minor)
    {
        var inside = $"/tmp/planted-{type}-{major}-{minor}";
        var onHost = $"/proc/{await KernelSandboxes.InitPidAsync(KernelSandboxes.Plain)}/root{inside}";
        if (!File.Exists(onHost))
        {
            var (code, _, error) = await Host.RunAsync("mknod", "-m", "666", onHost, type, major.ToString(CultureInfo.InvariantCulture), minor.ToString(CultureInfo.InvariantCulture));
            Assert.That(code, Is.Zero, "mknod on the host: " + error);
        }

        return inside;
    }
}
