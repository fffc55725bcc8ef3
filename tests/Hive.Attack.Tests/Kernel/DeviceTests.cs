namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// Device nodes: a host block device (read every file on it), /dev/kmsg (write into the host's
/// kernel log), /dev/mem, /dev/port. In its user namespace the sandbox cannot make a device node
/// at all (mknod(2) wants CAP_MKNOD in the host's namespace); behind that, the devices cgroup
/// would refuse opening one.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class DeviceTests
{
    [Test]
    [Defence("user namespace: no device node can be made (the devices cgroup would refuse opening it)")]
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
                var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"""
                    import stat
                    p = '/tmp/hostdisk-{numbers[0]}-{numbers[1]}'
                    try:
                        os.mknod(p, stat.S_IFBLK | 0o600, os.makedev({numbers[0]}, {numbers[1]}))
                    except OSError as e:
                        print('mknod ' + name(e))
                        sys.exit()
                    try:
                        print('read ' + open(p, 'rb').read({marker.Length}).decode())
                    except OSError as e:
                        print('open ' + name(e))
                    """);
                Assert.That(outcome, Is.EqualTo("mknod EPERM"));
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
    [Defence("user namespace: no device node can be made (the devices cgroup would refuse opening it)")]
    public async Task Host_character_device_cannot_be_opened(string device, int major, int minor, string flags)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"""
            import stat
            p = '/tmp/dev-{major}-{minor}'
            try:
                os.mknod(p, stat.S_IFCHR | 0o600, os.makedev({major}, {minor}))
                print('open ' + try_open(p, {flags}))
            except OSError as e:
                print('mknod ' + name(e))
            """);
        Assert.That(outcome, Is.EqualTo("mknod EPERM"), device);
    }
}
