using System.Text.RegularExpressions;

namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// What the sandbox can learn about the host: where Hive keeps its files (mountinfo), kernel and
/// physical addresses (KASLR), the host's identity, its kernel log, its processes, its cgroups.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed partial class HostFactsTests
{
    /// <summary>Host paths none of which may appear inside: Hive's own directories, and the places they usually are.</summary>
    private static IEnumerable<string> HostPaths()
    {
        var controller = KernelSandboxes.Controller;
        string[] mine =
        [
            controller.DataDir, controller.StateDir(KernelSandboxes.Networked), Paths.ImageDir, Paths.AgentBundle, Paths.Out, Paths.Repo,
            Path.Combine(controller.DataDir, "workspaces"),
        ];
        var resolved = mine.Select(p => new DirectoryInfo(p)).Where(d => d.Exists).Select(d => d.ResolveLinkTarget(returnFinalTarget: true)?.FullName).OfType<string>();
        return mine.Concat(resolved).Concat(["/var/lib/", "/var/cache/", "/tmp/hive-", "/run/netns", "/home/"]).Distinct();
    }

    [TestCase("/proc/self/mountinfo")]
    [TestCase("/proc/thread-self/mountinfo")]
    [TestCase("/proc/self/mounts")]
    [Defence("bind sources on a per-sandbox tmpfs, the agent bundle as an overlay of its own, overlay layers given by descriptor")]
    public async Task Mount_table_names_no_host_path(string file)
    {
        // The networked sandbox with a workspace has every kind of mount Hive makes: the rootfs
        // overlay, /.hive, the workspace (bare bind + FUSE), resolv.conf and the CA files.
        var (exitCode, table, stderr) = await KernelSandboxes.ShAsync(KernelSandboxes.Networked, "cat " + file);
        Assert.That(exitCode, Is.Zero, stderr);
        Assert.That(table, Does.Contain(" /workspace ").And.Contain(" /.hive ").And.Contain(" /etc/resolv.conf "), "the table has every kind of mount");
        Assert.Multiple(() =>
        {
            foreach (var path in HostPaths())
            {
                Assert.That(table, Does.Not.Contain(path), $"{file} names the host path {path}");
            }

            foreach (Match layer in OverlayLayers().Matches(table))
            {
                Assert.That(layer.Groups[2].Value, Does.Match(@"^/proc/self/fd/\d+(:/proc/self/fd/\d+)*$"), $"overlay {layer.Groups[1].Value} in {file}");
            }
        });
    }

    [TestCase("/sys/kernel/vmcoreinfo", TestName = "{m}(vmcoreinfo: physical address of the kernel's crash notes)")]
    [TestCase("/sys/kernel/notes", TestName = "{m}(the kernel's ELF notes: build id, entry point)")]
    [TestCase("/sys/kernel/boot_params/data", TestName = "{m}(boot parameters: the physical memory map)")]
    [TestCase("/proc/vmallocinfo", TestName = "{m}(vmalloc areas: kernel addresses when pointer hashing is off)")]
    [TestCase("/proc/kpageflags", TestName = "{m}(flags of every physical page)")]
    [TestCase("/proc/kpagecount", TestName = "{m}(map count of every physical page)")]
    [TestCase("/proc/slabinfo", TestName = "{m}(kernel heap layout)")]
    [TestCase("/proc/interrupts", TestName = "{m}(host device interrupts: a timing side channel)")]
    [TestCase("/proc/cmdline", TestName = "{m}(the host's kernel command line)")]
    [TestCase("/proc/sys/kernel/random/boot_id", TestName = "{m}(the host's boot id)")]
    [Defence("masked paths: kernel addresses and host identity read as empty")]
    public async Task File_that_reveals_the_host_reads_empty(string path)
    {
        Assert.That(KernelSandboxes.ReadOnHost(path), Is.Not.Empty, "on the host it has content");
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"""
            try:
                print(len(open('{path}', 'rb').read()))
            except FileNotFoundError:
                print(0)
            """);
        Assert.That(outcome, Is.EqualTo("0"), path);
    }

    [Test]
    [Defence("no CAP_SYSLOG: kernel symbol addresses read as zero")]
    public async Task Kernel_symbols_show_no_addresses()
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, """
            lines = open('/proc/kallsyms').read().splitlines()
            print(len(lines), sum(1 for l in lines if int(l.split()[0], 16) != 0))
            """);
        var counts = outcome.Split(' ');
        Assert.That(int.Parse(counts[0], System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(1000), "the symbols are listed");
        Assert.That(counts[1], Is.EqualTo("0"), "no symbol shows its address");
    }

    [TestCase("/proc/iomem")]
    [TestCase("/proc/ioports")]
    [Defence("no CAP_SYS_ADMIN: resource ranges read as zero")]
    public async Task Physical_resource_map_shows_no_addresses(string path)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"""
            import re
            ranges = re.findall(r'([0-9a-f]+)-([0-9a-f]+) :', open('{path}').read())
            print(len(ranges), sum(1 for a, b in ranges if int(a, 16) or int(b, 16)))
            """);
        var counts = outcome.Split(' ');
        Assert.That(int.Parse(counts[0], System.Globalization.CultureInfo.InvariantCulture), Is.Positive, "the ranges are listed");
        Assert.That(counts[1], Is.EqualTo("0"), "no range shows its address");
    }

    // /proc/kmsg is the host root's (0400): to the sandbox's root, in its user namespace, someone
    // else's file (EACCES) before CAP_SYSLOG is even asked for.
    [TestCase("syslog(READ_ALL)", "print(sc(103, 3, buf(4096), 4096))", "EPERM")]
    [TestCase("open /proc/kmsg", "print(try_open('/proc/kmsg'))", "EACCES")]
    [Defence("no CAP_SYSLOG (and seccomp refuses syslog); /proc/kmsg belongs to the host's root, who is nobody in the sandbox's user namespace")]
    public async Task Host_kernel_log_cannot_be_read(string attempt, string script, string refusal)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, script);
        Assert.That(outcome, Is.EqualTo(refusal), attempt);
    }

    [TestCase("debugfs", "/sys/kernel/debug")]
    [TestCase("tracefs", "/sys/kernel/tracing")]
    [TestCase("securityfs", "/sys/kernel/security")]
    [TestCase("bpf", "/sys/fs/bpf")]
    [Defence("a fresh sysfs without them, and no mounts (seccomp, no CAP_SYS_ADMIN)")]
    public async Task Kernel_debug_file_system_is_out_of_reach(string type, string dir)
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"print(len(os.listdir('{dir}')), sc(165, cstr(b'{type}'), cstr(b'{dir}'), cstr(b'{type}'), 0, 0))");
        Assert.That(outcome, Is.EqualTo("0 EPERM"), $"{dir} is empty and {type} cannot be mounted there");
    }

    [Test]
    [Defence("UTS namespace; no CAP_SYS_ADMIN to rename it; /proc/sys read-only")]
    public async Task Hostname_is_the_sandbox_s_own_and_stays_so()
    {
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, """
            print(os.uname().nodename, sc(170, cstr(b'host'), 4), try_write('/proc/sys/kernel/hostname', 'host'), os.uname().nodename)
            """);
        Assert.That(outcome, Is.EqualTo($"{KernelSandboxes.Plain} EPERM EROFS {KernelSandboxes.Plain}"));
    }

    [Test]
    [Defence("PID namespace: host processes do not exist for the sandbox")]
    public async Task Host_processes_are_out_of_sight()
    {
        var sbxd = int.Parse(File.ReadAllText(Path.Combine(KernelSandboxes.Controller.StateDir(KernelSandboxes.Plain), "sbxd.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var hosts = new[] { KernelSandboxes.Controller.Pid, sbxd, Environment.ProcessId };
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $$"""
            hosts = [{{string.Join(", ", hosts)}}]
            seen = [p for p in hosts if os.path.exists(f'/proc/{p}')]
            def signal0(p):
                try:
                    os.kill(p, 0)
                    return 'OK'
                except OSError as e:
                    return name(e)
            print(seen, sorted({signal0(p) for p in hosts}), len([d for d in os.listdir('/proc') if d.isdigit()]) < 20)
            """);
        Assert.That(outcome, Is.EqualTo("[] ['ESRCH'] True"), "the Controller, Sbxd and this test process are invisible, and unsignalable");
    }

    [Test]
    [Defence("cgroup namespace: the sandbox's cgroup is its root")]
    public async Task Cgroup_membership_names_no_host_cgroup()
    {
        var (_, text, _) = await KernelSandboxes.ShAsync(KernelSandboxes.Plain, "cat /proc/self/cgroup");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Is.Not.Empty);
        Assert.That(lines.Where(l => !l.EndsWith(":/", StringComparison.Ordinal)), Is.Empty, "every hierarchy shows / (not /hive/<name>)");
    }

    [GeneratedRegex(@"(lowerdir|upperdir|workdir)=([^,\s]*)")]
    private static partial Regex OverlayLayers();
}
