namespace Hive.Attack.Tests.Syscalls;

/// <summary>
/// System calls outside the seccomp allow-list, each made the way an exploit would (raw, with
/// arguments that work): the sandbox gets EPERM, while the same probe on the host — the kernel's own
/// answer — succeeds, so each refusal is the filter's and not a missing feature. Targets are the
/// probe's own child processes (dumpable, same user), so nothing but the filter stands in the way;
/// PID 1 has its own tests (Pid1/).
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class SyscallFilterTests
{
    /// <summary>fork a child that waits (it sees <c>secret</c> at the same address), run <c>body</c> with its pid, reap it.</summary>
    private const string WithChild = """
        secret = ctypes.create_string_buffer(b'hive-secret-0123', 16)
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            os.read(r, 1)
            os._exit(0)
        def done():
            os.write(w, b'x')
            os.waitpid(child, 0)
        """;

    [TestCase("io_uring_setup", "print(sc(425, 8, buf(120)))")]
    [TestCase("io_uring_enter", "ring = libc.syscall(425, 8, ctypes.c_void_p(buf(120)))\nprint(sc(426, ring, 0, 0, 0, 0, 0))")]
    [TestCase("io_uring_register (probe the opcodes)", "ring = libc.syscall(425, 8, ctypes.c_void_p(buf(120)))\nprint(sc(427, ring, 8, buf(48), 4))")]
    [TestCase("modify_ldt (read the LDT)", "print(sc(154, 0, buf(16), 16))")]
    [TestCase("personality(ADDR_NO_RANDOMIZE)", "print(sc(135, 0x0040000))")]
    [TestCase("personality(READ_IMPLIES_EXEC)", "print(sc(135, 0x0400000))")]
    [TestCase("personality(MMAP_PAGE_ZERO)", "print(sc(135, 0x0100000))")]
    [TestCase("personality(ADDR_COMPAT_LAYOUT)", "print(sc(135, 0x0200000))")]
    [TestCase("pidfd_getfd of a child's descriptor", WithChild + "\npidfd = libc.syscall(434, child, 0)\nprint(sc(438, pidfd, 0, 0))\ndone()")]
    [TestCase("process_vm_readv of a child's memory", WithChild + "\nout = buf(16)\nlocal = buf(16, struct.pack('<QQ', out, 16))\nremote = buf(16, struct.pack('<QQ', ctypes.addressof(secret), 16))\nprint(sc(310, child, local, 1, remote, 1, 0))\ndone()")]
    [TestCase("process_vm_writev into a child's memory", WithChild + "\nsrc = buf(16, b'x' * 16)\nlocal = buf(16, struct.pack('<QQ', src, 16))\nremote = buf(16, struct.pack('<QQ', ctypes.addressof(secret), 16))\nprint(sc(311, child, local, 1, remote, 1, 0))\ndone()")]
    [TestCase("kcmp of a child's descriptors", WithChild + "\nprint(sc(312, os.getpid(), child, 0, 0, 0))\ndone()")]
    [TestCase("rt_sigqueueinfo to a child (a forged sender)", WithChild + "\nprint(sc(129, child, 28, buf(128, struct.pack('<iii', 28, 0, -1))))\ndone()")]
    [TestCase("name_to_handle_at", "print(sc(303, -100, cstr(b'/etc'), buf(136, struct.pack('<I', 128)), buf(4), 0))")]
    [TestCase("socket(AF_VSOCK): the hypervisor, in no network namespace", "print(sc(41, 40, 1, 0))")]
    [Defence("seccomp allow-list: the call is not listed (default EPERM)")]
    public async Task Unlisted_system_call_is_refused(string call, string script)
    {
        var inside = await SyscallSandboxes.PythonAsync(script);
        Assert.That(inside, Is.EqualTo("EPERM"), call);
        Assert.That(await SyscallSandboxes.OnHostAsync(script), Is.EqualTo("OK"), $"{call} on the host (the kernel's own answer)");
    }

    [Test]
    [Defence("seccomp allow-list (name_to_handle_at, open_by_handle_at are not listed); opening by handle also needs CAP_DAC_READ_SEARCH, which no sandbox has")]
    public async Task Opening_a_file_by_its_handle_is_refused()
    {
        // The "shocker" escape: a handle names any file of the file system, whatever the container's root.
        const string Script = """
            h = buf(136, struct.pack('<I', 128))
            m = buf(4)
            made = sc(303, -100, cstr(b'/etc'), h, m, 0)
            print(made, sc(304, os.open('/', os.O_RDONLY), h, 0o200000))
            """;
        Assert.That(await SyscallSandboxes.PythonAsync(Script), Is.EqualTo("EPERM EPERM"));
        Assert.That(await SyscallSandboxes.OnHostAsync(Script), Is.EqualTo("OK OK"), "on the host (root with CAP_DAC_READ_SEARCH) both work");
    }

    [Test]
    [Defence("seccomp allow-list: personality accepts only harmless personas")]
    public async Task Address_space_randomization_stays_on()
    {
        // After the refused call, the persona is unchanged and a child still gets a randomized layout.
        var outcome = await SyscallSandboxes.PythonAsync("""
            refused = sc(135, 0x0040000)
            persona = libc.syscall(135, ctypes.c_long(0xffffffff))
            import subprocess
            maps = {subprocess.run(['sh', '-c', 'grep -m1 stack /proc/self/maps'], capture_output=True, text=True).stdout.split('-')[0] for _ in range(4)}
            print(refused, hex(persona), 'randomized' if len(maps) > 1 else 'fixed')
            """);
        Assert.That(outcome, Is.EqualTo("EPERM 0x0 randomized"));
    }

    [TestCase("nfsservctl (180, removed from the kernel)", 180, "ENOSYS")]
    [TestCase("uselib (134)", 134, null)]
    [TestCase("vserver (236, never implemented)", 236, "ENOSYS")]
    [Defence("seccomp allow-list: a number the profile does not allow answers EPERM before the kernel sees it")]
    public async Task A_number_inside_the_table_that_is_not_allowed_is_refused(string call, int number, string? hostAnswer)
    {
        var script = $"print(sc({number}, 0, 0, 0))";
        Assert.That(await SyscallSandboxes.PythonAsync(script), Is.EqualTo("EPERM"), call);
        if (hostAnswer is not null)
        {
            Assert.That(await SyscallSandboxes.OnHostAsync(script), Is.EqualTo(hostAnswer), "the kernel's own answer is a different one");
        }
    }

    [TestCase("cachestat (451)", "fd = os.open('/etc/hostname', os.O_RDONLY)\nprint(sc(451, fd, buf(16), buf(40), 0))")]
    [TestCase("fchmodat2 (452)", "print(sc(452, -100, cstr(b'/nonexistent'), 0o644, 0))")]
    [TestCase("statmount (457)", "print(sc(457, buf(32, struct.pack('<IIQQQ', 32, 0, 0, 0, 0)), buf(512), 512, 0))")]
    [TestCase("listmount (458): the mount ids of a namespace", "print(sc(458, buf(32, struct.pack('<IIqQQ', 32, 0, -1, 0, 0)), buf(64), 8, 0))")]
    [TestCase("lsm_list_modules (461)", "print(sc(461, buf(64), buf(8, struct.pack('<I', 64)), 0))")]
    [TestCase("mseal (462)", "print(sc(462, 0, 0, 1))")]
    [Defence("seccomp allow-list: calls newer than the profile never reach the kernel (runc answers ENOSYS so that libc falls back)")]
    public async Task A_call_newer_than_the_profile_does_not_reach_the_kernel(string call, string script)
    {
        Assert.That(await SyscallSandboxes.PythonAsync(script), Is.EqualTo("ENOSYS"), call);
        Assert.That(await SyscallSandboxes.OnHostAsync(script), Is.Not.EqualTo("ENOSYS"), "the host's kernel implements it: it would have run");
    }

    [TestCase("int 0x80: 32-bit getpid", "code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])")]
    [TestCase("int 0x80: 32-bit setuid(0), a compat entry point", "code = bytes([0x53, 0xb8, 213, 0, 0, 0, 0x31, 0xdb, 0xcd, 0x80, 0x5b, 0xc3])")]
    [TestCase("syscall with bit 30 set: x32 getpid", "code = bytes([0xb8, 39, 0, 0, 0x40, 0x0f, 0x05, 0xc3])")]
    [Defence("seccomp: only the x86_64 ABI is listed; a 32-bit or x32 call kills the calling thread (SIGSYS)")]
    public async Task A_system_call_through_another_abi_kills_the_caller(string attempt, string code)
    {
        // The machine code runs in a child python so that the kill (SIGSYS, -31) can be observed.
        var script = $$"""
            import subprocess
            child = '''
            import ctypes, mmap, sys
            {{code}}
            m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            m.write(code)
            print('returned', ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(m)))())
            '''
            p = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True)
            print(p.returncode, p.stdout.strip())
            """;
        Assert.That(await SyscallSandboxes.PythonAsync(script), Is.EqualTo("-31"), attempt);
        Assert.That(await SyscallSandboxes.OnHostAsync(script), Does.StartWith("0 returned"), "on the host the caller lives (x32 answers ENOSYS: this kernel has no x32 ABI)");
    }
}
