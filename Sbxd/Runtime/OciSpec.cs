using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// The OCI runtime spec (config.json) of a sandbox container: hive-agent as PID 1, the sandbox's
/// namespaces and limits, a minimal capability set, masked /proc paths, read-only /sys.
/// </summary>
internal static class OciSpec
{
    /// <summary>
    /// What root in a sandbox may do beyond an ordinary user: only what the base image's tools, pip,
    /// npm, git and apt/dpkg need (CapabilityTests shows each one's absence breaking them). The same
    /// set is the bounding, effective and permitted set; nothing is inheritable or ambient.
    /// </summary>
    /// <remarks>
    /// <list type="bullet">
    /// <item><c>CAP_CHOWN</c>: tar, dpkg, pip and npm give extracted files their owners.</item>
    /// <item><c>CAP_DAC_OVERRIDE</c>: root reads and writes other users' files and directories (a
    /// user's home, apt's <c>_apt</c>-owned cache, files an upload replaces).</item>
    /// <item><c>CAP_FOWNER</c>: root sets modes and times of files it does not own (tar -p, dpkg,
    /// <c>chmod</c> in another user's tree).</item>
    /// <item><c>CAP_SETUID</c>, <c>CAP_SETGID</c>: apt runs its downloads as <c>_apt</c>; su, runuser and
    /// setpriv run commands as other users.</item>
    /// <item><c>CAP_KILL</c>: root signals processes of other users (a server it started as
    /// <c>nobody</c>, <c>pkill -u</c>).</item>
    /// </list>
    /// Dropped from Docker's default set: <c>CAP_NET_RAW</c> (raw and packet sockets: hand-made
    /// packets past the sandbox's own stack), <c>CAP_MKNOD</c> (device nodes), <c>CAP_SETFCAP</c> (file
    /// capabilities), <c>CAP_AUDIT_WRITE</c> (the kernel refuses audit messages from a pid namespace
    /// anyway), <c>CAP_SYS_CHROOT</c> (dpkg and apt chroot only for <c>--root</c>), <c>CAP_SETPCAP</c>
    /// (lowering the bounding set or securebits), <c>CAP_FSETID</c> (keeping set-group-ID for a group
    /// root is not in: with no_new_privileges the bits do nothing in a sandbox) and
    /// <c>CAP_NET_BIND_SERVICE</c> (the sandbox's network namespace lets anyone bind ports below 1024,
    /// see <c>SandboxRuntime</c>, which also works where root's capabilities belong to a user namespace
    /// of its own and the network namespace does not).
    /// </remarks>
    public static readonly string[] Capabilities =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_KILL",
    ];

    /// <summary>
    /// Read as empty inside (runc binds /dev/null over a file, an empty read-only tmpfs over a
    /// directory; paths the host lacks are skipped). Docker's list, then what a sweep of /proc and
    /// /sys inside a sandbox found telling more about the host than a sandbox needs (docs/SECURITY.md):
    /// kernel and physical addresses (KASLR: vmcoreinfo, the kernel's ELF notes and boot parameters,
    /// vmalloc areas, page frame flags and counts), heap and allocator layout (slabinfo, pagetypeinfo),
    /// host device interrupts (a timing side channel) and the host's identity (kernel command line,
    /// boot id, DMI serials and UUIDs, hypervisor UUID). And the host's block devices: every loop
    /// device names its backing file in sysfs (<c>loop/backing_file</c>) — the host path of each
    /// sandbox's disk and workspace images, other sandboxes' names with them — and /sys/fs/ext4 keeps
    /// per-file-system write counters of every sandbox's disk.
    /// </summary>
    private static readonly string[] MaskedPaths =
    [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
        "/sys/kernel/vmcoreinfo", "/sys/kernel/notes", "/sys/kernel/boot_params", "/proc/vmallocinfo",
        "/proc/kpageflags", "/proc/kpagecount", "/proc/kpagecgroup", "/sys/kernel/mm/page_idle",
        "/proc/slabinfo", "/proc/pagetypeinfo", "/proc/interrupts",
        "/proc/cmdline", "/proc/sys/kernel/random/boot_id", "/sys/devices/virtual/dmi", "/sys/hypervisor",
        "/sys/devices/virtual/block", "/sys/fs/ext4",
    ];

    private static readonly string[] ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    /// <param name="ids">The sandbox's id range when it has a user namespace (joined at <see cref="SandboxLayout.UserNamespaceFile"/>).</param>
    public static string Build(SandboxLayout layout, IReadOnlyList<string> env, IEnumerable<(string Destination, string Source)> workspaces, IEnumerable<(string Destination, string Source)> files, IdRange? ids = null)
    {
        var spec = layout.Spec;
        var caps = new JsonArray(Capabilities.Select(c => (JsonNode)c).ToArray());
        var quota = (long)spec.CpuMillis * 100; // per 100 ms period
        var config = new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = new JsonObject
            {
                ["terminal"] = false,
                ["user"] = new JsonObject { ["uid"] = 0, ["gid"] = 0 },
                // The default image's MCP server also listens on 127.0.0.1:8080 inside the sandbox
                // (sandbox.url); another image's entrypoint owns that port. No oomScoreAdj: runc would
                // write it with CAP_SYS_RESOURCE and so lower the floor every command inherits; Sbxd
                // protects the agent after start instead (SandboxRuntime.ProtectAgentFromOomKiller).
                ["args"] = spec.Image == "base"
                    ? new JsonArray("/.hive/agent/hive-agent", "--listen-fd", "3", "--mcp-port", "8080")
                    : new JsonArray("/.hive/agent/hive-agent", "--listen-fd", "3"),
                ["env"] = new JsonArray(env.Select(e => (JsonNode)e).ToArray()),
                ["cwd"] = "/",
                ["capabilities"] = new JsonObject
                {
                    ["bounding"] = caps.DeepClone(),
                    ["effective"] = caps.DeepClone(),
                    ["permitted"] = caps.DeepClone(),
                },
                ["noNewPrivileges"] = true,
            },
            ["root"] = new JsonObject { ["path"] = layout.Rootfs, ["readonly"] = false },
            ["hostname"] = layout.Name,
            ["mounts"] = new JsonArray(
                // hidepid=ptraceable: a process the caller may not ptrace is not listed at all. The agent
                // (PID 1) is not dumpable, so /proc/1 does not exist for the sandbox — nothing there to
                // read, and no oom_score_adj to raise so that the OOM killer would take the agent.
                Mount("/proc", "proc", "proc", ["hidepid=ptraceable"]),
                // /dev holds device nodes and links (no data): 1 MiB and 1024 inodes, not a scratch space.
                Mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=1024k", "nr_inodes=1024"]),
                Mount("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
                Mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", .. ShmSize(spec)]),
                Mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
                Mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
                Mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
                Mount("/.hive", "bind", layout.AgentMount, ["bind", "ro", "nosuid", "nodev"])),
            ["linux"] = new JsonObject
            {
                ["cgroupsPath"] = layout.CgroupPath,
                ["namespaces"] = new JsonArray(
                    new JsonObject { ["type"] = "pid" },
                    new JsonObject { ["type"] = "ipc" },
                    new JsonObject { ["type"] = "uts" },
                    new JsonObject { ["type"] = "mount" },
                    new JsonObject { ["type"] = "cgroup" },
                    new JsonObject { ["type"] = "network", ["path"] = layout.NetnsPath }),
                ["resources"] = new JsonObject
                {
                    ["devices"] = new JsonArray(new JsonObject { ["allow"] = false, ["access"] = "rwm" }),
                    ["memory"] = new JsonObject
                    {
                        ["limit"] = (long)spec.MemoryBytes,
                        ["swap"] = (long)spec.MemoryBytes, // memory+swap = memory: no swap
                    },
                    ["cpu"] = new JsonObject { ["quota"] = quota, ["period"] = 100_000 },
                    ["pids"] = new JsonObject { ["limit"] = (long)spec.Pids },
                },
                ["seccomp"] = SeccompProfile.Build(),
                ["maskedPaths"] = new JsonArray(MaskedPaths.Select(p => (JsonNode)p).ToArray()),
                ["readonlyPaths"] = new JsonArray(ReadonlyPaths.Select(p => (JsonNode)p).ToArray()),
            },
        };
        if (ids is not null)
        {
            // runc joins the namespace Sbxd made (it owns the network namespace, and the rootfs's lower
            // layer is idmapped through it); the maps are the ones it already has.
            var linux = config["linux"]!.AsObject();
            linux["namespaces"]!.AsArray().Add(new JsonObject { ["type"] = "user", ["path"] = layout.UserNamespaceFile });
            linux["uidMappings"] = new JsonArray(new JsonObject { ["containerID"] = 0, ["hostID"] = ids.Base, ["size"] = IdRange.Size });
            linux["gidMappings"] = new JsonArray(new JsonObject { ["containerID"] = 0, ["hostID"] = ids.Base, ["size"] = IdRange.Size });
        }

        var mounts = config["mounts"]!.AsArray();
        foreach (var (destination, source) in workspaces)
        {
            // rslave: a FUSE mount replaced on the host (SbxFuse restart) shows up in the container too.
            // The bare mount point underneath is never executed from; noexec because it sits on the
            // noexec binds tmpfs, and in a user namespace a bind may not drop a flag its source has
            // (the FUSE mount propagated on top has flags of its own).
            mounts.Add(Mount(destination, "bind", source, ["rbind", "rslave", "ro", "nosuid", "nodev", "noexec"]));
        }

        foreach (var (destination, source) in files)
        {
            // Resolver and trust store of a networked sandbox: host-owned, read-only.
            mounts.Add(Mount(destination, "bind", source, ["bind", "ro", "nosuid", "nodev", "noexec"]));
        }

        return config.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// /dev/shm's size (tmpfs pages are charged to the memory cgroup of whoever writes them, so it is
    /// also within the sandbox's memory; the Controller sets min(memory/2, 64 MiB)) and an inode limit
    /// to match: one per 16 KiB, at least 1024. A spec without a size gets the 64 MiB of before.
    /// </summary>
    private static string[] ShmSize(Hive.Protos.V1.SandboxSpec spec)
    {
        var bytes = spec.ShmBytes > 0 ? spec.ShmBytes : 64UL << 20;
        var kib = Math.Max(4, bytes / 1024);
        return [FormattableString.Invariant($"size={kib}k"), FormattableString.Invariant($"nr_inodes={Math.Max(1024, bytes / 16384)}")];
    }

    private static JsonObject Mount(string destination, string type, string source, string[] options) => new()
    {
        ["destination"] = destination,
        ["type"] = type,
        ["source"] = source,
        ["options"] = new JsonArray(options.Select(o => (JsonNode)o).ToArray()),
    };
}
