using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Hive.Sbxd.Runtime;

namespace Hive.Sbxd.Tests;

/// <summary>
/// The seccomp allow-list is a deliberate decision for every entry of the kernel's table, and its
/// rules mean what they say once runc has read them (SeccompProfile's remarks).
/// </summary>
public sealed partial class SeccompProfileTests
{
    private const string Table = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";

    [GeneratedRegex(@"^#define __NR_(\w+) (\d+)$", RegexOptions.Multiline)]
    private static partial Regex Define();

    private static Dictionary<string, int> KernelTable()
    {
        if (!File.Exists(Table))
        {
            Assert.Ignore($"{Table} is not installed (linux-libc-dev)");
        }

        return Define().Matches(File.ReadAllText(Table)).ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    private static IEnumerable<(string Name, string List)> Decisions() =>
        SeccompProfile.Allowed.SelectMany(f => f.Syscalls.Select(s => (s, "allowed: " + f.Name)))
            .Concat(SeccompProfile.Filtered.Syscalls.Select(s => (s, "filtered")))
            .Concat(SeccompProfile.NotImplemented.Syscalls.Select(s => (s, "ENOSYS")))
            .Concat(SeccompProfile.Denied.SelectMany(f => f.Syscalls.Select(s => (s, "denied: " + f.Name))));

    [Test]
    public void Every_syscall_of_the_kernel_table_is_decided_exactly_once()
    {
        var table = KernelTable();
        var decided = Decisions().ToList();
        Assert.Multiple(() =>
        {
            Assert.That(table.Keys.Except(decided.Select(d => d.Name)), Is.Empty, "in the kernel's table, but neither allowed nor denied");
            Assert.That(decided.Select(d => d.Name).Except(table.Keys), Is.Empty, "named, but not an x86_64 system call (a typo would be silently ignored by runc)");
            Assert.That(decided.GroupBy(d => d.Name).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(" / ", g.Select(d => d.List))}"), Is.Empty, "decided twice");
        });
    }

    [Test]
    public void Refused_calls_from_the_issue_are_not_allowed()
    {
        var allowed = Decisions().Where(d => d.List.StartsWith("allowed", StringComparison.Ordinal)).Select(d => d.Name).ToHashSet();
        string[] refused = ["unshare", "setns", "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
            "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
            "swapon", "swapoff", "clock_settime", "clock_adjtime", "settimeofday", "adjtimex", "reboot", "acct", "quotactl", "quotactl_fd", "lookup_dcookie",
            "fanotify_init", "open_by_handle_at", "name_to_handle_at", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "io_uring_setup", "io_uring_enter",
            "io_uring_register", "modify_ldt", "kcmp", "iopl", "ioperm", "syslog"];
        Assert.That(refused.Where(allowed.Contains), Is.Empty);
    }

    [Test]
    public void The_profile_denies_by_default_for_x86_64_only()
    {
        var profile = SeccompProfile.Build();
        Assert.Multiple(() =>
        {
            Assert.That((string?)profile["defaultAction"], Is.EqualTo("SCMP_ACT_ERRNO"));
            Assert.That((int?)profile["defaultErrnoRet"], Is.EqualTo(1), "EPERM");
            Assert.That(profile["architectures"]!.AsArray().Select(a => (string?)a), Is.EqualTo(new[] { "SCMP_ARCH_X86_64" }));
        });
    }

    [Test]
    public void Each_rule_compares_an_argument_at_most_once()
    {
        // runc 1.1 turns repeated comparisons of one argument into separate rules (OR instead of AND).
        var rules = SeccompProfile.Build()["syscalls"]!.AsArray().Select(r => r!.AsObject());
        var repeated = rules.Where(r => r["args"] is JsonArray args && args.Select(a => (int)a!["index"]!).Distinct().Count() != args.Count).ToList();
        Assert.That(repeated, Is.Empty);
    }

    [Test]
    public void Nothing_is_refused_by_a_rule_runc_would_drop_except_the_documentation_list()
    {
        // A rule with the default action (EPERM) is skipped by runc: only the one list of denied names may carry it.
        var rules = SeccompProfile.Build()["syscalls"]!.AsArray().Select(r => r!.AsObject()).ToList();
        var eperm = rules.Where(r => (string?)r["action"] == "SCMP_ACT_ERRNO" && (int?)r["errnoRet"] == 1).ToList();
        Assert.That(eperm, Has.Count.EqualTo(1));
        Assert.That(eperm[0]["args"], Is.Null);
        Assert.That(rules.Where(r => (string?)r["action"] == "SCMP_ACT_ERRNO" && (int?)r["errnoRet"] != 1).SelectMany(r => r["names"]!.AsArray().Select(n => (string?)n)),
            Is.EquivalentTo(SeccompProfile.NotImplemented.Syscalls));
    }

    [Test]
    public void The_highest_numbered_call_of_the_table_is_named_so_that_only_newer_ones_answer_ENOSYS()
    {
        // runc answers ENOSYS above the highest number the profile names; below it, the default (EPERM) applies.
        var table = KernelTable();
        var named = SeccompProfile.Build()["syscalls"]!.AsArray().SelectMany(r => r!["names"]!.AsArray().Select(n => (string)n!)).Where(table.ContainsKey);
        Assert.That(named.Max(n => table[n]), Is.EqualTo(table.Values.Max()));
    }

    [TestCase(1L, false)]
    [TestCase(0x1_0000_0001L, false)]
    [TestCase(0L, true)]
    [TestCase(2L, true)]
    [TestCase(3L, true)]
    [TestCase(4_194_303L, true)]
    [TestCase(0xFFFF_FFFFL, true)]
    [TestCase(-1L, true)]
    [TestCase(-4_194_304L, true)]
    public void A_signal_to_a_pid_is_allowed_unless_the_kernel_reads_the_pid_as_1(long pid, bool allowed)
    {
        // Evaluates the profile's kill rules the way libseccomp's filter does: any rule whose conditions all hold allows.
        Assert.That(Allows("kill", pid, 15), Is.EqualTo(allowed), $"kill({pid:x}, SIGTERM)");
        Assert.That(Allows("kill", pid, 0), Is.True, "the existence probe");
        Assert.That(Allows("kill", pid, 11), Is.False, "SIGSEGV, to anyone");
        Assert.That(Allows("tgkill", pid, 7, 15), Is.EqualTo(allowed), $"tgkill({pid:x}, 7, SIGTERM)");
        Assert.That(Allows("tgkill", pid, 7, 34), Is.True, "a real-time signal (the runtime's activation signal)");
    }

    [TestCase(4L)]
    [TestCase(5L)]
    [TestCase(6L)]
    [TestCase(7L)]
    [TestCase(8L)]
    [TestCase(11L)]
    [TestCase(0x7_0000_000BL)]
    public void Fault_signals_are_refused_in_every_encoding(long signal)
    {
        Assert.That(Allows("kill", 1234, signal), Is.False, "kill");
        Assert.That(Allows("fcntl", 3, 10, signal), Is.False, "F_SETSIG");
        Assert.That(Allows("fcntl", 3, 0x1_0000_000AL, signal), Is.False, "F_SETSIG with high bits");
    }

    [Test]
    public void Ordinary_fcntl_commands_and_signals_pass()
    {
        foreach (var cmd in new long[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 15, 16, 36, 37, 38, 1024, 1030, 1031, 1033, 1034 })
        {
            Assert.That(Allows("fcntl", 3, cmd, 0), Is.True, $"fcntl cmd {cmd}");
        }

        foreach (var signal in new long[] { 0, 1, 2, 3, 9, 10, 12, 15, 17, 31, 32, 34, 64 })
        {
            Assert.That(Allows("fcntl", 3, 10, signal), Is.True, $"F_SETSIG {signal}");
            Assert.That(Allows("kill", 1234, signal), Is.True, $"kill -{signal}");
        }
    }

    [TestCase("clone", 0x0001_1200L | 17, true)]
    [TestCase("clone", 0x003D_0F00L, true)]
    [TestCase("clone", 0x1000_0000L | 17, false)]
    [TestCase("clone", 0x4000_0000L, false)]
    [TestCase("clone", 0x0002_0000L, false)]
    [TestCase("personality", 0xFFFF_FFFFL, true)]
    [TestCase("personality", 0x0008L, true)]
    [TestCase("personality", 0x0040000L, false)]
    [TestCase("personality", 0x0400000L, false)]
    [TestCase("socket", 2L, true)]
    [TestCase("socket", 16L, true)]
    [TestCase("socket", 17L, false)]
    [TestCase("socket", 40L, false)]
    [TestCase("socketpair", 1L, true)]
    [TestCase("socketpair", 30L, false)]
    [TestCase("prlimit64", 0L, true)]
    [TestCase("prlimit64", 1L, false)]
    public void Argument_filters_decide_on_the_first_argument(string syscall, long first, bool allowed)
    {
        Assert.That(Allows(syscall, first, 0, 0x7fff_0000), Is.EqualTo(allowed));
    }

    /// <summary>What the profile decides for one call: allowed when an allow rule names it and all its conditions hold.</summary>
    private static bool Allows(string syscall, params long[] args)
    {
        foreach (var rule in SeccompProfile.Build()["syscalls"]!.AsArray().Select(r => r!.AsObject()))
        {
            if ((string?)rule["action"] != "SCMP_ACT_ALLOW" || !rule["names"]!.AsArray().Any(n => (string?)n == syscall))
            {
                continue;
            }

            var conditions = rule["args"]?.AsArray().Select(a => a!.AsObject()) ?? [];
            if (conditions.All(c => Holds(c, args.ElementAtOrDefault((int)c["index"]!))))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Holds(JsonObject condition, long arg)
    {
        var value = (long)condition["value"]!;
        return (string?)condition["op"] switch
        {
            "SCMP_CMP_MASKED_EQ" => (arg & value) == (long)condition["valueTwo"]!,
            "SCMP_CMP_EQ" => arg == value,
            var op => throw new NotSupportedException(op),
        };
    }
}
