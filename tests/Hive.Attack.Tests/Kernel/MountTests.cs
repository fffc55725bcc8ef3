namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// Changing the mount table from inside: mounting something new (a cgroup v1 hierarchy with a
/// release_agent, procfs or sysfs without masks), unmounting a mask to see what it hides,
/// re-rooting, or the new descriptor-based mount API.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class MountTests
{
    [TestCase("mount a tmpfs", "os.makedirs('/tmp/m', exist_ok=True)\nprint(sc(165, cstr(b'none'), cstr(b'/tmp/m'), cstr(b'tmpfs'), 0, 0))")]
    [TestCase("mount a fresh procfs (no masks)", "os.makedirs('/tmp/p', exist_ok=True)\nprint(sc(165, cstr(b'proc'), cstr(b'/tmp/p'), cstr(b'proc'), 0, 0))")]
    [TestCase("unmount the mask over vmcoreinfo", "print(sc(166, cstr(b'/sys/kernel/vmcoreinfo'), 2))")]
    [TestCase("unmount the read-only /proc/sys", "print(sc(166, cstr(b'/proc/sys'), 2))")]
    [TestCase("remount /sys read-write", "print(sc(165, cstr(b'none'), cstr(b'/sys'), cstr(b'none'), 0x20, 0))")]
    [TestCase("pivot_root", "os.makedirs('/tmp/nr/old', exist_ok=True)\nprint(sc(155, cstr(b'/tmp/nr'), cstr(b'/tmp/nr/old')))")]
    [TestCase("open_tree (clone of /)", "print(sc(428, -100, cstr(b'/'), 1 | 0x80000))")]
    [TestCase("move_mount", "print(sc(429, -100, cstr(b'/proc'), -100, cstr(b'/tmp'), 0))")]
    [TestCase("fsopen", "print(sc(430, cstr(b'tmpfs'), 0))")]
    [TestCase("fspick", "print(sc(433, -100, cstr(b'/sys'), 0))")]
    [TestCase("mount_setattr (clear read-only on /sys)", "print(sc(442, -100, cstr(b'/sys'), 0, buf(32, struct.pack('<QQQQ', 0, 1, 0, 0)), 32))")]
    [Defence("seccomp: the mount family is refused (and no CAP_SYS_ADMIN)")]
    public async Task Mount_table_changes_are_refused(string attempt, string script)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, script);
        Assert.That(outcome, Is.EqualTo("EPERM"), attempt);
    }

    [Test]
    [Defence("no CAP_SYS_CHROOT (and chroot is not in the seccomp allow-list); behind it, pivot_root: the container's root is its mount namespace's root, so `..` stops there")]
    public async Task Chroot_escape_lands_inside_the_container_root()
    {
        // The classic escape: chroot into a subdirectory while holding a descriptor of the old root,
        // fchdir out of the jail, walk up with "..", chroot("."). The sandbox cannot even start it (no
        // CAP_SYS_CHROOT). A host process with every capability, entered into the sandbox's mount
        // namespace and root, stands for a sandbox that got the capability back: it leaves the chroot
        // jail — it must not leave the container.
        const string Escape = """
            before = os.stat('/')
            os.makedirs('/tmp/jail', exist_ok=True)
            outside = os.open('/', os.O_RDONLY)
            os.chroot('/tmp/jail')
            os.fchdir(outside)
            for _ in range(64):
                os.chdir('..')
            os.chroot('.')
            after = os.stat('/')
            same = (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)
            print('same-root' if same else 'escaped', sorted(os.listdir('/')))
            """;
        Assert.That(await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, "os.makedirs('/tmp/jail', exist_ok=True)\nprint(sc(161, cstr(b'/tmp/jail')))"), Is.EqualTo("EPERM"), "chroot from inside");
        var pid = (await KernelSandboxes.InitPidAsync(KernelSandboxes.Plain)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var outcome = await KernelSandboxes.PythonAsHostRootInsideAsync(Escape, "nsenter", "--target", pid, "--mount", "--root", "--wd=/");
        Assert.That(outcome, Does.StartWith("same-root"), "after the escape, / is still the container's root");
        Assert.That(outcome, Does.Contain("'.hive'"), outcome);
    }
}
