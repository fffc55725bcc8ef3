namespace Hive.Sbxd.Runtime;

/// <summary>
/// A group of system calls the sandbox's seccomp filter treats alike, with the reason it does:
/// who in the sandbox needs them (allowed) or what they would open up (denied). docs/SECURITY.md
/// lists the same families.
/// </summary>
/// <param name="Name">The family, e.g. "Files: names and metadata".</param>
/// <param name="Reason">Why the family is allowed or refused, in a sentence.</param>
/// <param name="Syscalls">x86_64 names as in the kernel's table (asm/unistd_64.h).</param>
internal sealed record SyscallFamily(string Name, string Reason, string[] Syscalls);
