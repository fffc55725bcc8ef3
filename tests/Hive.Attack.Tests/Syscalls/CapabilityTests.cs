using System.Globalization;

namespace Hive.Attack.Tests.Syscalls;

/// <summary>
/// Root in the sandbox holds CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_SETUID, CAP_SETGID and
/// CAP_KILL only (Integration CapabilityTests shows each one is needed). What Docker's default set
/// also grants — raw packets, device nodes, file capabilities, audit messages, chroot, lowering the
/// bounding set, binding privileged ports — is gone, and so is the way back.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class CapabilityTests
{
    private const ulong Expected = (1UL << 0) | (1UL << 1) | (1UL << 3) | (1UL << 5) | (1UL << 6) | (1UL << 7);

    [TestCase("CAP_NET_RAW", 13)]
    [TestCase("CAP_MKNOD", 27)]
    [TestCase("CAP_SETFCAP", 31)]
    [TestCase("CAP_AUDIT_WRITE", 29)]
    [TestCase("CAP_SYS_CHROOT", 18)]
    [TestCase("CAP_SETPCAP", 8)]
    [TestCase("CAP_FSETID", 4)]
    [TestCase("CAP_NET_BIND_SERVICE", 10)]
    [Defence("minimal capability set: dropped from every set, the bounding set included")]
    public async Task Dropped_capability_is_in_no_set(string capability, int bit)
    {
        var status = await SyscallSandboxes.PythonAsync("print(' '.join(l.split()[1] for l in open('/proc/self/status') if l.startswith('Cap')))");
        var sets = status.Split(' ').Select(s => ulong.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
        Assert.That(sets, Has.Length.EqualTo(5), "CapInh CapPrm CapEff CapBnd CapAmb");
        Assert.That(sets.Any(s => (s & (1UL << bit)) != 0), Is.False, $"{capability} in {status}");
        Assert.That(sets[1..4], Is.All.EqualTo(Expected), "permitted, effective and bounding are exactly the minimal set");
    }

    [TestCase("raw IPv4 socket (ICMP)", "print(sc(41, 2, 3, 1))")]
    [TestCase("raw IPv4 socket (UDP, hand-made headers)", "print(sc(41, 2, 3, 17))")]
    [TestCase("raw IPv6 socket", "print(sc(41, 10, 3, 58))")]
    [TestCase("packet socket (whole Ethernet frames)", "print(sc(41, 17, 3, 0x300))")]
    [Defence("no CAP_NET_RAW (packet sockets are refused by the seccomp socket filter too)")]
    public async Task Raw_sockets_are_refused(string attempt, string script)
    {
        Assert.That(await SyscallSandboxes.PythonAsync(script), Is.EqualTo("EPERM"), attempt);
    }

    [TestCase("block device (a host disk, 8:0)", "0o060600", 8, 0)]
    [TestCase("character device /dev/mem (1:1)", "0o020600", 1, 1)]
    [TestCase("character device /dev/kmsg (1:11)", "0o020600", 1, 11)]
    [Defence("no CAP_MKNOD (the devices cgroup would refuse opening it too: Kernel/DeviceTests)")]
    public async Task Device_nodes_cannot_be_made(string node, string mode, int major, int minor)
    {
        var outcome = await SyscallSandboxes.PythonAsync($"""
            try:
                os.mknod('/tmp/node-{major}-{minor}', {mode}, os.makedev({major}, {minor}))
                print('OK')
            except OSError as e:
                print(name(e))
            try:
                os.mkfifo('/tmp/fifo-{major}-{minor}')
                print('fifo OK')
            except FileExistsError:
                print('fifo OK')
            """);
        Assert.That(outcome, Is.EqualTo("EPERM\nfifo OK"), node + " (a FIFO, which needs no capability, still works)");
    }

    [Test]
    [Defence("no CAP_SETFCAP: file capabilities cannot be written, not even on the sandbox's own files")]
    public async Task File_capabilities_cannot_be_planted()
    {
        // VFS_CAP_REVISION_2 granting cap_sys_admin, on a copy of /bin/true in the overlay (not a workspace).
        var outcome = await SyscallSandboxes.PythonAsync("""
            import shutil
            shutil.copy('/bin/true', '/tmp/capped')
            data = struct.pack('<IIIII', 0x02000001, 1 << 21, 0, 0, 0)
            try:
                os.setxattr('/tmp/capped', 'security.capability', data)
                print('OK')
            except OSError as e:
                print(name(e))
            """);
        Assert.That(outcome, Is.EqualTo("EPERM"));
    }

    [Test]
    [Defence("no CAP_SYS_CHROOT (and chroot is not in the seccomp allow-list)")]
    public async Task Chroot_is_refused()
    {
        Assert.That(await SyscallSandboxes.PythonAsync("os.makedirs('/tmp/jail', exist_ok=True)\nprint(sc(161, cstr(b'/tmp/jail')))"), Is.EqualTo("EPERM"));
    }

    [TestCase("raise CAP_NET_RAW into the permitted and effective sets", 13)]
    [TestCase("raise CAP_SYS_ADMIN into the permitted and effective sets", 21)]
    [Defence("capabilities outside the bounding set can never be gained (capset refuses; no_new_privileges and no file capabilities for execve)")]
    public async Task A_dropped_capability_cannot_be_raised_again(string attempt, int bit)
    {
        // struct __user_cap_header_struct { version 3, pid 0 } and two __user_cap_data_struct { effective, permitted, inheritable }.
        var outcome = await SyscallSandboxes.PythonAsync($"""
            header = buf(8, struct.pack('<Ii', 0x20080522, 0))
            data = buf(24)
            libc.syscall(125, ctypes.c_void_p(header), ctypes.c_void_p(data))
            eff, prm, inh, eff2, prm2, inh2 = struct.unpack('<6I', ctypes.string_at(data, 24))
            raised = buf(24, struct.pack('<6I', eff | (1 << {bit}), prm | (1 << {bit}), inh, eff2, prm2, inh2))
            print(sc(126, header, raised))
            """);
        Assert.That(outcome, Is.EqualTo("EPERM"), attempt);
    }
}
