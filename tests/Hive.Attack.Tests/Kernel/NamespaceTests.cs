namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// New namespaces from inside. A user namespace would hand the sandbox's root a full capability
/// set over everything created in it (mounts, networks, …) — the first step of most container
/// escapes — so it is combined with each other kind here, as an exploit would.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class NamespaceTests
{
    private const long CloneNewUser = 0x10000000;
    private const long Sigchld = 17;

    [TestCase("user", 0)]
    [TestCase("user+mount", 0x00020000)]
    [TestCase("user+net", 0x40000000)]
    [TestCase("user+pid", 0x20000000)]
    [TestCase("user+cgroup", 0x02000000)]
    [TestCase("user+ipc", 0x08000000)]
    [TestCase("user+uts", 0x04000000)]
    [TestCase("user+time", 0x00000080)]
    [Defence("seccomp: unshare is refused (no new namespaces, no user namespace)")]
    public async Task Unshare_into_new_namespaces_is_refused(string kinds, long flags)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"print(sc(272, {CloneNewUser | flags}))");
        Assert.That(outcome, Is.EqualTo("EPERM"), $"unshare({kinds})");
    }

    [TestCase("user", CloneNewUser)]
    [TestCase("user+mount", CloneNewUser | 0x00020000)]
    [TestCase("net", 0x40000000)]
    [Defence("seccomp: clone with a namespace flag is refused")]
    public async Task Clone_into_new_namespaces_is_refused(string kinds, long flags)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"print(sc(56, {flags | Sigchld}, 0, 0, 0, 0))");
        Assert.That(outcome, Is.EqualTo("EPERM"), $"clone({kinds})");
    }

    [Test]
    [Defence("seccomp: clone3 answers ENOSYS (its flags are out of the filter's sight)")]
    public async Task Clone3_with_a_user_namespace_is_not_available()
    {
        // struct clone_args { flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls } = 64 bytes (v0).
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"print(sc(435, buf(64, struct.pack('<QQQQQQQQ', {CloneNewUser}, 0, 0, 0, {Sigchld}, 0, 0, 0)), 64))");
        Assert.That(outcome, Is.EqualTo("ENOSYS"));
    }

    [TestCase("user")]
    [TestCase("mnt")]
    [TestCase("net")]
    [TestCase("pid")]
    [Defence("seccomp: setns is refused (and no CAP_SYS_ADMIN)")]
    public async Task Setns_into_namespaces_of_pid_1_is_refused(string ns)
    {
        // PID 1's user namespace is the host's initial one: joining it would be the way out. PID 1's own
        // /proc/1/ns files are closed to the sandbox (the agent is not dumpable, see Pid1/), so the attempt
        // goes through the caller's own namespace files, which name the same namespaces.
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"fd = os.open('/proc/self/ns/{ns}', os.O_RDONLY)\nprint(sc(308, fd, 0))");
        Assert.That(outcome, Is.EqualTo("EPERM"));
    }
}
