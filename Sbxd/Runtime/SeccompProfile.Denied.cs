namespace Hive.Sbxd.Runtime;

/// <summary>What the filter refuses (EPERM), by family, and why (docs/SECURITY.md has the same table).</summary>
internal static partial class SeccompProfile
{
    /// <summary>
    /// Named here for the record: they are refused because no allow rule names them, like any call
    /// the kernel adds later. Several also need a capability the sandbox lacks — the filter is the
    /// second wall there, and the only one for the keyrings, user-space perf, file handles,
    /// userfaultfd, io_uring and modify_ldt, which an unprivileged process may use.
    /// </summary>
    internal static readonly SyscallFamily[] Denied =
    [
        new("New namespaces",
            "a new user namespace hands its creator a full capability set over everything made in it (mounts, networks) — the first step of most container escapes; clone with a CLONE_NEW* flag is refused by its filter",
            ["unshare", "setns"]),
        new("Mounts and the root",
            "changing the mount table would unmask /proc and /sys, mount a cgroup hierarchy's release_agent or a fresh procfs; chroot needs CAP_SYS_CHROOT, which no sandbox has (nothing in the base image uses it)",
            ["mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"]),
        new("Kernel keyrings",
            "keys and key quotas belong to a user id, not to a container (without a user namespace, root inside shares root's keyring on the host); no capability is needed",
            ["add_key", "request_key", "keyctl"]),
        new("Kernel code, BPF and tracing",
            "loading code into the kernel, BPF programs, performance counters (user-space perf needs no capability), kexec",
            ["bpf", "perf_event_open", "init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms", "query_module",
             "kexec_load", "kexec_file_load", "lookup_dcookie"]),
        new("Other processes' memory and descriptors",
            "reading or writing another process's memory, taking its descriptors, comparing kernel objects across processes, advising its memory",
            ["process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp", "process_madvise", "process_mrelease"]),
        new("Exploit primitives",
            "interfaces with a long record of kernel exploits that no tool here needs: io_uring (its requests also bypass this filter), userfaultfd (holds a kernel copy at a page fault), modify_ldt and 32-bit thread-area descriptors, secret memory",
            ["io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "modify_ldt", "set_thread_area", "get_thread_area",
             "memfd_secret"]),
        new("File handles",
            "open_by_handle_at opens any file of a file system by its handle, bypassing the paths the container sees (the \"shocker\" escape)",
            ["name_to_handle_at", "open_by_handle_at"]),
        new("Host administration",
            "the host's clock, swap, reboot, accounting, quotas, host and domain name, kernel log, port I/O, terminal hang-up, file system watches over the whole mount (fanotify)",
            ["reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "sethostname", "setdomainname", "syslog", "vhangup", "iopl",
             "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "_sysctl", "nfsservctl", "fanotify_init", "fanotify_mark"]),
        new("NUMA placement",
            "memory policies and page migration, also of other processes (CAP_SYS_NICE); without them programs use the default policy",
            ["mbind", "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages"]),
        new("Queued signals",
            "rt_sigqueueinfo and rt_tgsigqueueinfo carry a forged sender; nothing in the base image sends them (kill, tgkill do)",
            ["rt_sigqueueinfo", "rt_tgsigqueueinfo"]),
        new("Obsolete or not implemented",
            "removed or never implemented on x86_64, or superseded (uselib loads a.out libraries; ustat, sysfs and remap_file_pages have modern replacements)",
            ["uselib", "ustat", "sysfs", "remap_file_pages", "getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "vserver",
             "epoll_ctl_old", "epoll_wait_old"]),
    ];
}
