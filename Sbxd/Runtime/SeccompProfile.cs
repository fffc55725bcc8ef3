using System.Text.Json.Nodes;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// The sandbox's seccomp filter: everything is allowed except what a sandboxed root must never
/// reach — new namespaces (a user namespace would hand it a full capability set), the kernel
/// keyring, BPF, perf, module and kexec loading, mounts, clock and swap control.
/// </summary>
internal static partial class SeccompProfile
{
    private const int EPERM = 1;
    private const int ENOSYS = 38;

    /// <summary>CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.</summary>
    private static readonly long[] NamespaceFlags = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];

    private static readonly string[] Denied =
    [
        "unshare", "setns", "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick",
        "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "acct", "quotactl",
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog", "iopl", "ioperm",
        "lookup_dcookie", "fanotify_init", "vhangup", "kcmp", "process_vm_writev",
    ];

    public static JsonObject Build()
    {
        var syscalls = new JsonArray
        {
            new JsonObject
            {
                ["names"] = new JsonArray(Denied.Select(n => (JsonNode)n).ToArray()),
                ["action"] = "SCMP_ACT_ERRNO",
                ["errnoRet"] = EPERM,
            },

            // clone3 passes its flags in memory a filter cannot read: answer "not implemented" so libc falls back to clone.
            new JsonObject { ["names"] = new JsonArray("clone3"), ["action"] = "SCMP_ACT_ERRNO", ["errnoRet"] = ENOSYS },
        };
        AddSignalRules(syscalls);
        foreach (var flag in NamespaceFlags)
        {
            syscalls.Add(new JsonObject
            {
                ["names"] = new JsonArray("clone"),
                ["action"] = "SCMP_ACT_ERRNO",
                ["errnoRet"] = EPERM,
                ["args"] = new JsonArray(new JsonObject { ["index"] = 0, ["value"] = flag, ["valueTwo"] = flag, ["op"] = "SCMP_CMP_MASKED_EQ" }),
            });
        }

        return new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ALLOW",
            ["architectures"] = new JsonArray("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
            ["syscalls"] = syscalls,
        };
    }
}
