namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// Kernel facilities a sandbox never needs and exploits love: keyrings, BPF, perf events,
/// userfaultfd (reliable race windows), modules and kexec, file handles (the "shocker" escape
/// opens host files by handle), port I/O, swap, reboot, the clock, accounting, fanotify.
/// Several need a capability the sandbox lacks as well; keyctl/add_key/request_key, perf (user
/// space only), userfaultfd (user mode only) and name_to_handle_at need none — for those the
/// filter is all there is. Arguments are chosen so that a kernel letting a call through would
/// still change nothing on the host (reboot: Ctrl-Alt-Del off; kexec_load: another architecture;
/// a module that does not exist; the clock set to what it reads).
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class KernelInterfaceTests
{
    [TestCase("keyctl", "print(sc(250, 0, -3, 1))")]
    [TestCase("add_key", "print(sc(248, cstr(b'user'), cstr(b'hive-probe'), cstr(b'x'), 1, -2))")]
    [TestCase("request_key", "print(sc(249, cstr(b'user'), cstr(b'hive-probe'), 0, -2))")]
    [TestCase("bpf", "print(sc(321, 0, buf(72, struct.pack('<IIII', 2, 4, 4, 1)), 72))")]
    [TestCase("perf_event_open", "print(sc(298, buf(128, struct.pack('<IIQQQQQ', 1, 128, 1, 0, 0, 0, 1 | 1 << 5 | 1 << 6)), 0, -1, -1, 0))")]
    [TestCase("userfaultfd", "print(sc(323, 1))")]
    [TestCase("init_module", "print(sc(175, buf(64), 64, cstr(b'')))")]
    [TestCase("finit_module", "print(sc(313, os.open('/bin/true', os.O_RDONLY), cstr(b''), 0))")]
    [TestCase("delete_module", "print(sc(176, cstr(b'hive_probe_absent'), 0x800))")]
    [TestCase("kexec_load", "print(sc(246, 0, 0, 0, 3 << 16))")]
    [TestCase("kexec_file_load", "print(sc(320, os.open('/bin/true', os.O_RDONLY), -1, 1, cstr(b''), 0x4))")]
    [TestCase("name_to_handle_at", "print(sc(303, -100, cstr(b'/'), buf(136, struct.pack('<I', 128)), buf(4), 0))")]
    [TestCase("open_by_handle_at", "print(sc(304, os.open('/', os.O_RDONLY), buf(136, struct.pack('<Ii', 8, 1) + struct.pack('<Q', 2)), 0))")]
    [TestCase("iopl", "print(sc(172, 3))")]
    [TestCase("ioperm", "print(sc(173, 0x80, 1, 1))")]
    [TestCase("swapon", "print(sc(167, cstr(b'/tmp/swap'), 0))")]
    [TestCase("reboot", "print(sc(169, 0xfee1dead, 672274793, 0, 0))")]
    [TestCase("clock_settime", "t = time.clock_gettime_ns(time.CLOCK_REALTIME)\nprint(sc(227, 0, buf(16, struct.pack('<qq', t // 10**9, t % 10**9))))")]
    [TestCase("acct", "print(sc(163, 0))")]
    [TestCase("fanotify_init", "print(sc(300, 0, 0))")]
    [Defence("seccomp: refused by name (some need a capability the sandbox lacks too)")]
    public async Task Kernel_facility_is_refused(string syscall, string script)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, script);
        Assert.That(outcome, Is.EqualTo("EPERM"), syscall);
    }
}
