namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// Escaping or loosening the sandbox's cgroups: the release_agent escape (CVE-2022-0492: mount a
/// cgroup v1 hierarchy, set notify_on_release and a release_agent that the host runs as root),
/// moving itself to another cgroup, raising its own limits, allowing itself devices.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class CgroupTests
{
    [TestCase("mount a cgroup v1 hierarchy (for its release_agent)", "os.makedirs('/tmp/cg', exist_ok=True)\nprint(sc(165, cstr(b'cgroup'), cstr(b'/tmp/cg'), cstr(b'cgroup'), 0, cstr(b'rdma')))", "EPERM")]
    [TestCase("mount cgroup2", "os.makedirs('/tmp/cg2', exist_ok=True)\nprint(sc(165, cstr(b'none'), cstr(b'/tmp/cg2'), cstr(b'cgroup2'), 0, 0))", "EPERM")]
    [TestCase("set notify_on_release", "print(try_write('/sys/fs/cgroup/memory/notify_on_release', '1'))", "EROFS")]
    [TestCase("write cgroup.procs (the top it can see is its own cgroup)", "print(try_write('/sys/fs/cgroup/memory/cgroup.procs', str(os.getpid())))", "EROFS")]
    [TestCase("raise its memory limit", "print(try_write('/sys/fs/cgroup/memory/memory.limit_in_bytes', '-1'))", "EROFS")]
    [TestCase("raise its pids limit", "print(try_write('/sys/fs/cgroup/pids/pids.max', 'max'))", "EROFS")]
    [TestCase("allow itself every device", "print(try_write('/sys/fs/cgroup/devices/devices.allow', 'a'))", "EROFS")]
    [TestCase("create a child cgroup (own limits)", "print(try_mkdir('/sys/fs/cgroup/memory/escape'))", "EROFS")]
    [Defence("cgroup namespace + cgroup fs mounted read-only; mounting refused (seccomp, no CAP_SYS_ADMIN)")]
    public async Task Cgroup_escape_is_refused(string attempt, string script, string expected)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, script);
        Assert.That(outcome, Is.EqualTo(expected), attempt);
    }
}
