using System.Globalization;

namespace Hive.Attack.Tests.Pid1;

/// <summary>
/// Root in the sandbox against the sandbox's init (hive-agent, PID 1): its descriptors, memory and
/// environment, tracing, and every way to signal it. Each attempt must fail the way the defence
/// makes it fail, and the init must be the same process afterwards.
/// </summary>
[TestFixture]
[Category(From.Inside)]
[CancelAfter(600_000)]
public sealed class InitProcessTests : InitFixture
{
    private string _sandbox = null!;
    private InitProcess _init = null!;

    [OneTimeSetUp]
    public async Task CreateSandboxAsync()
    {
        _sandbox = await CreateSandboxAsync("pid1");
        _init = await InitProcess.OfAsync(_sandbox);
    }

    [OneTimeTearDown]
    public async Task DestroySandboxAsync()
    {
        if (_sandbox is not null)
        {
            await Controller.DestroyAsync(_sandbox);
        }
    }

    private string AnyThread => _init.ThreadIdsInside()[0].ToString(CultureInfo.InvariantCulture);

    [Test]
    [Defence("PID 1 is not dumpable: /proc/1/fd is closed to the sandbox; its output is a pipe Sbxd drains")]
    public async Task Writing_into_the_agents_stdout_or_stderr_is_refused_and_reaches_no_host_file()
    {
        // Its own sandbox: the log line used as a barrier below appears once per sandbox.
        var sandbox = await CreateSandboxAsync("pid1-out");
        try
        {
            var init = await InitProcess.OfAsync(sandbox);
            var marker = "attack-" + Guid.NewGuid().ToString("N");
            foreach (var fd in new[] { 1, 2 })
            {
                var (exit, _, stderr) = await RunAsync(sandbox, $"echo {marker} >> /proc/1/fd/{fd}");
                Assert.That(exit, Is.Not.Zero, $"/proc/1/fd/{fd} was writable");
                Assert.That(stderr, Does.Contain("Operation not permitted").Or.Contain("Permission denied"));
            }

            // Barrier: the agent reports the first SIGHUP it ignores; once that line is in agent.log,
            // anything written to its output before it would be there too.
            await RunAsync(sandbox, $"kill -HUP {init.ThreadIdsInside()[0]}");
            var log = Path.Combine(Controller.StateDir(sandbox), "agent.log");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && !(File.Exists(log) && (await File.ReadAllTextAsync(log)).Contains("Ignored SIGHUP", StringComparison.Ordinal)))
            {
                await Task.Delay(100);
            }

            var written = string.Concat(Directory.EnumerateFiles(Controller.StateDir(sandbox), "agent.log*").Select(File.ReadAllText));
            Assert.That(written, Does.Contain("Ignored SIGHUP"), "the agent's output reaches agent.log");
            Assert.That(written, Does.Not.Contain(marker), "the sandbox wrote into a host file");
            await AssertSameInitAsync(sandbox, init);
        }
        finally
        {
            await Controller.DestroyAsync(sandbox);
        }
    }

    [TestCase("cat /proc/1/environ", TestName = "Reading the agent's environment is refused")]
    [TestCase("cat /proc/1/maps", TestName = "Reading the agent's memory map is refused")]
    [TestCase("dd if=/proc/1/mem bs=1 count=1 skip=4194304", TestName = "Reading the agent's memory through /proc/1/mem is refused")]
    [TestCase("stat -L /proc/1/fd/3", TestName = "Reaching the agent's listening socket through /proc/1/fd is refused")]
    [TestCase("ls /proc/1/root/", TestName = "Entering the agent's root through /proc/1/root is refused")]
    [TestCase("echo 1000 > /proc/1/oom_score_adj", TestName = "Raising the agent's OOM score is refused")]
    [Defence("PID 1 is not dumpable: /proc/1/* is behind the ptrace check, which the sandbox (no CAP_SYS_PTRACE) fails, and /proc is mounted hidepid=ptraceable, so /proc/1 is not even listed")]
    public async Task Reading_the_agents_proc_files(string command)
    {
        var (exit, _, stderr) = await RunAsync(_sandbox, command);
        Assert.That(exit, Is.Not.Zero, command + " succeeded");
        Assert.That(stderr, Does.Contain("Operation not permitted").Or.Contain("Permission denied"));
        await AssertSameInitAsync(_sandbox, _init);
    }

    [Test]
    [Defence("PID 1 is not dumpable: ptrace(PTRACE_ATTACH/PTRACE_SEIZE) fails; its commands are dumpable again")]
    public async Task Tracing_the_agent_is_refused()
    {
        var attach = await AttackAsync(_sandbox, "syscall", 101, 16, 1, 0, 0); // ptrace(PTRACE_ATTACH, 1)
        var seize = await AttackAsync(_sandbox, "syscall", 101, 0x4206, 1, 0, 0); // ptrace(PTRACE_SEIZE, 1)
        Assert.That(attach[0], Is.EqualTo((-1L, EPERM)), "PTRACE_ATTACH");
        Assert.That(seize[0], Is.EqualTo((-1L, EPERM)), "PTRACE_SEIZE");

        // What the agent starts is an ordinary process again (execve resets the flag).
        var dumpable = await AttackAsync(_sandbox, "dumpable");
        Assert.That(dumpable[0], Is.EqualTo((1L, 0)), "a command's PR_GET_DUMPABLE");
        await AssertSameInitAsync(_sandbox, _init);
    }

    [Test]
    [Defence("PID 1 is not dumpable: pidfd_getfd(2) needs ptrace access")]
    public async Task Taking_the_agents_listening_socket_with_pidfd_getfd_is_refused()
    {
        var calls = await AttackAsync(_sandbox, "pidfd-getfd", 1, 3);
        Assert.That(calls[0].Result, Is.GreaterThanOrEqualTo(0), "pidfd_open(1) itself is allowed");
        Assert.That(calls[1], Is.EqualTo((-1L, EPERM)), "pidfd_getfd(pidfd, 3)");
        await AssertSameInitAsync(_sandbox, _init);
    }

    [Test]
    [Defence("PID 1 is not dumpable: process_vm_readv(2) needs ptrace access")]
    public async Task Reading_the_agents_memory_with_process_vm_readv_is_refused()
    {
        var calls = await AttackAsync(_sandbox, "vm-readv", 1, 0x400000);
        Assert.That(calls[0], Is.EqualTo((-1L, EPERM)));
        await AssertSameInitAsync(_sandbox, _init);
    }

    [TestCase("TERM")]
    [TestCase("INT")]
    [TestCase("QUIT")]
    [TestCase("HUP")]
    [TestCase("USR1")]
    [TestCase("SEGV")]
    [TestCase("BUS")]
    [TestCase("ABRT")]
    [TestCase("STOP")]
    [Defence("seccomp: kill(2) and rt_sigqueueinfo(2) to pid 1 answer EPERM")]
    public async Task Signalling_pid_1_is_refused(string signal)
    {
        var (exit, _, stderr) = await RunAsync(_sandbox, $"kill -{signal} 1");
        Assert.That(exit, Is.Not.Zero, $"kill -{signal} 1 was delivered");
        Assert.That(stderr, Does.Contain("Operation not permitted"));
        var queued = await AttackAsync(_sandbox, "syscall", 129, 1, 15, 0); // rt_sigqueueinfo(1, SIGTERM, NULL)
        Assert.That(queued[0], Is.EqualTo((-1L, EPERM)), "rt_sigqueueinfo(1)");
        await AssertSameInitAsync(_sandbox, _init);
    }

    [TestCase("TERM")]
    [TestCase("INT")]
    [TestCase("QUIT")]
    [TestCase("HUP")]
    [TestCase("USR1")]
    [TestCase("USR2")]
    [TestCase("ALRM")]
    [TestCase("PIPE")]
    [Defence("the agent's host has no console lifetime and cancels termination signals; the kernel drops unhandled ones sent to a namespace's init")]
    public async Task A_signal_to_one_of_the_agents_threads_does_not_stop_it(string signal)
    {
        // kill(2) with a thread id signals the whole process: no filter on the target can catch it.
        var (exit, _, stderr) = await RunAsync(_sandbox, $"kill -{signal} {AnyThread}");
        Assert.That(exit, Is.Zero, stderr);
        await AssertSameInitAsync(_sandbox, _init);
    }

    [TestCase("SEGV", 11)]
    [TestCase("BUS", 7)]
    [TestCase("FPE", 8)]
    [TestCase("ILL", 4)]
    [TestCase("TRAP", 5)]
    [TestCase("ABRT", 6)]
    [Defence("seccomp: no process may be sent the runtime's fault signals")]
    public async Task Fault_signals_cannot_reach_the_agent_through_a_thread_id(string signal, int number)
    {
        var (exit, _, stderr) = await RunAsync(_sandbox, $"kill -{signal} {AnyThread}");
        Assert.That(exit, Is.Not.Zero, $"kill -{signal} reached the agent");
        Assert.That(stderr, Does.Contain("Operation not permitted"));
        var queued = await AttackAsync(_sandbox, "syscall", 129, AnyThread, number, 0); // rt_sigqueueinfo
        Assert.That(queued[0], Is.EqualTo((-1L, EPERM)), "rt_sigqueueinfo");

        // Delivered, it would have taken the runtime's handler down with it (reset to the default).
        Assert.That(_init.CaughtSignals() & (1UL << (number - 1)), Is.Not.Zero, "the agent's handler for SIG" + signal);
        await AssertSameInitAsync(_sandbox, _init);
    }

    [Test]
    [Defence("seccomp: tkill(2) and pidfd_send_signal(2) answer ENOSYS (their target cannot be checked); ordinary signalling still works")]
    public async Task Signalling_the_agent_by_thread_id_or_pidfd_is_not_available()
    {
        var tkill = await AttackAsync(_sandbox, "syscall", 200, AnyThread, 15); // tkill(tid, SIGTERM)
        var pidfd = await AttackAsync(_sandbox, "syscall", 424, 0, 15, 0, 0); // pidfd_send_signal(0, SIGTERM)
        Assert.That(tkill[0], Is.EqualTo((-1L, ENOSYS)), "tkill");
        Assert.That(pidfd[0], Is.EqualTo((-1L, ENOSYS)), "pidfd_send_signal");

        // The sandbox's own processes still signal each other with the tools of the base image.
        var (exit, stdout, stderr) = await RunAsync(_sandbox, "sleep 30 & /usr/bin/kill -TERM $!; wait $!; echo \"kill $?\"; sleep 30 & kill -HUP $!; wait $!; echo \"builtin $?\"; timeout -s TERM 0.2 sleep 30; echo \"timeout $?\"; sleep 30 & pkill -USR1 -x sleep; wait $!; echo \"pkill $?\"; python3 -c 'import os, signal, subprocess; p = subprocess.Popen([\"sleep\", \"30\"]); os.kill(p.pid, signal.SIGTERM); print(\"python\", p.wait())'");
        Assert.That(exit, Is.Zero, stderr);
        Assert.That(stdout, Is.EqualTo("kill 143\nbuiltin 129\ntimeout 124\npkill 138\npython -15\n"));
        await AssertSameInitAsync(_sandbox, _init);
    }

    [TestCase(15)]
    [TestCase(11)]
    [TestCase(19)]
    [Defence("seccomp: tgkill(2) and rt_tgsigqueueinfo(2) to thread group 1 answer EPERM for every classic signal")]
    public async Task Signalling_an_agent_thread_with_tgkill_is_refused(int signal)
    {
        var tgkill = await AttackAsync(_sandbox, "syscall", 234, 1, AnyThread, signal);
        var queued = await AttackAsync(_sandbox, "syscall", 297, 1, AnyThread, signal, 0);
        Assert.That(tgkill[0], Is.EqualTo((-1L, EPERM)), "tgkill");
        Assert.That(queued[0], Is.EqualTo((-1L, EPERM)), "rt_tgsigqueueinfo");

        // High bits the kernel drops (an int argument) must not slip past the filter.
        var widened = await AttackAsync(_sandbox, "syscall", 234, 0x1_0000_0001L, AnyThread, 0x1_0000_0000L + signal);
        Assert.That(widened[0], Is.EqualTo((-1L, EPERM)), "tgkill with high bits set");
        await AssertSameInitAsync(_sandbox, _init);
    }

    [Test]
    [Defence("seccomp: F_SETSIG cannot choose a fault signal for the kernel to send")]
    public async Task Making_the_kernel_send_a_fault_signal_with_F_SETSIG_is_refused()
    {
        var segv = await AttackAsync(_sandbox, "setsig", 11);
        var realtime = await AttackAsync(_sandbox, "setsig", 40);
        Assert.That(segv[0], Is.EqualTo((-1L, EPERM)), "F_SETSIG SIGSEGV");
        Assert.That(realtime[0], Is.EqualTo((0L, 0)), "F_SETSIG with a real-time signal, as programs use it");
        await AssertSameInitAsync(_sandbox, _init);
    }

    [TestCase("--cpu=1:1", TestName = "Lowering the agent's CPU-time limit (the kernel would SIGKILL it) is refused")]
    [TestCase("--nofile=8:8", TestName = "Lowering the agent's descriptor limit is refused")]
    [Defence("seccomp: prlimit64(2) may not set another process's limits")]
    public async Task Lowering_the_agents_resource_limits(string limit)
    {
        var (exit, _, stderr) = await RunAsync(_sandbox, $"prlimit --pid 1 {limit}");
        Assert.That(exit, Is.Not.Zero, "prlimit --pid 1 " + limit);
        Assert.That(stderr, Does.Contain("Operation not permitted"));
        var thread = await RunAsync(_sandbox, $"prlimit --pid {AnyThread} {limit}");
        Assert.That(thread.Exit, Is.Not.Zero, "through a thread id");

        var own = await RunAsync(_sandbox, $"prlimit {limit} true && ulimit -n 64 && echo ok");
        Assert.That(own.Stdout, Is.EqualTo("ok\n"), "a process still sets its own limits: " + own.Stderr);
        await AssertSameInitAsync(_sandbox, _init);
    }

    [Test]
    [Defence("the kernel ignores SIGSTOP sent to a namespace's init from inside; ptrace is refused")]
    public async Task Freezing_the_agent_is_not_possible()
    {
        var (exit, _, stderr) = await RunAsync(_sandbox, $"kill -STOP {AnyThread}");
        Assert.That(exit, Is.Zero, stderr);
        var seize = await AttackAsync(_sandbox, "syscall", 101, 0x4206, 1, 0, 0); // PTRACE_SEIZE, then it could PTRACE_INTERRUPT
        Assert.That(seize[0], Is.EqualTo((-1L, EPERM)));
        Assert.That(_init.State(), Is.Not.EqualTo("T").And.Not.EqualTo("t"), "the agent is stopped");
        await AssertSameInitAsync(_sandbox, _init);
    }
}
