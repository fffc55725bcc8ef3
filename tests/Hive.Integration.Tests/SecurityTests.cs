namespace Hive.Integration.Tests;

/// <summary>What a sandboxed root can and cannot do (see docs/SECURITY.md).</summary>
[TestFixture]
[CancelAfter(300_000)]
public sealed class SecurityTests : SharedControllerFixture
{
    private string _name = null!;

    [OneTimeSetUp]
    public async Task CreateSandboxAsync()
    {
        _name = Names.Unique("sec");
        await Controller.CreateAsync(new { name = _name });
    }

    // Python 3.11 has no os.unshare: call the syscall (272) and require EPERM, so a missing function cannot pass for a defence.
    [TestCase("python3 -c 'import ctypes, sys; l = ctypes.CDLL(None, use_errno=True); r = l.syscall(272, 0x10000000); sys.exit(1 if r < 0 and ctypes.get_errno() == 1 else 0)'", TestName = "no user namespaces (unshare)")]
    [TestCase("unshare --user --map-root-user true", TestName = "no user namespaces (unshare tool)")]
    [TestCase("python3 -c 'import ctypes, sys; l = ctypes.CDLL(None, use_errno=True); r = l.syscall(272, 0x40000000); sys.exit(1 if r < 0 and ctypes.get_errno() == 1 else 0)'", TestName = "no new network namespace")]
    [TestCase("mkdir -p /tmp/m && mount -t tmpfs none /tmp/m", TestName = "no mounts")]
    [TestCase("touch /sys/kernel/x", TestName = "sysfs is read-only")]
    [TestCase("echo 1 > /proc/sys/kernel/sysrq", TestName = "proc/sys is read-only")]
    [TestCase("touch /.hive/x", TestName = "the agent bundle is read-only")]
    [TestCase("ip link add dummy0 type dummy", TestName = "no network administration")]
    [TestCase("python3 -c 'import ctypes, sys; l = ctypes.CDLL(None, use_errno=True); r = l.syscall(250, 0, -3, 0); sys.exit(1 if r < 0 and ctypes.get_errno() == 1 else 0)'", TestName = "no keyring (keyctl is EPERM)")]
    public async Task Denied(string command)
    {
        var result = await Controller.ExecAsync(_name, command);
        Assert.That(result.GetProperty("exit_code").GetInt32(), Is.Not.Zero, result.ToString());
    }

    [Test]
    public async Task Privileges_are_reduced()
    {
        var status = await Controller.ExecAsync(_name, "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status");
        var text = status.GetProperty("stdout").GetString()!;
        Assert.That(text, Does.Contain("CapEff:\t00000000000000eb"), "CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETGID, SETUID (CapabilitiesNeededTests)");
        Assert.That(text, Does.Contain("CapBnd:\t00000000000000eb"));
        Assert.That(text, Does.Contain("NoNewPrivs:\t1"));
        Assert.That(text, Does.Contain("Seccomp:\t2"), "a seccomp filter is installed");
        var kcore = await Controller.ExecAsync(_name, "head -c 16 /proc/kcore | wc -c");
        Assert.That(kcore.GetProperty("stdout").GetString()!.Trim(), Is.EqualTo("0"), "/proc/kcore is masked");
    }

    [Test]
    public async Task Host_sockets_and_processes_are_out_of_reach()
    {
        var procs = await Controller.ExecAsync(_name, "ls /proc | grep -c '^[0-9]'");
        Assert.That(int.Parse(procs.GetProperty("stdout").GetString()!.Trim(), System.Globalization.CultureInfo.InvariantCulture), Is.LessThan(10), "only the sandbox's own processes");
        var sockets = await Controller.ExecAsync(_name, "find / -xdev -type s 2>/dev/null | wc -l");
        Assert.That(sockets.GetProperty("stdout").GetString()!.Trim(), Is.EqualTo("0"), "no Controller/Sbxd/agent socket is visible in the sandbox");
    }

    [Test]
    public async Task Ordinary_work_still_runs()
    {
        var result = await Controller.ExecAsync(_name, "python3 -c 'import subprocess, threading; t = threading.Thread(target=print, args=(\"thread\",)); t.start(); t.join(); print(subprocess.run([\"echo\", \"child\"], capture_output=True, text=True).stdout.strip())' && git init -q /tmp/repo && echo ok");
        Assert.That(result.GetProperty("stdout").GetString(), Is.EqualTo("thread\nchild\nok\n"), result.ToString());
    }
}
