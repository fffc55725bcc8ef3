using Hive.Interop;

namespace Hive.Agent.Init;

/// <summary>
/// Keeps the sandbox's root out of PID 1's memory and descriptors. The sandbox runs as root with the
/// agent's own uid and capabilities, so the kernel's ptrace access check (ptrace(2), "Ptrace access
/// mode checking") would let it attach, read /proc/1/mem, /proc/1/environ, /proc/1/maps, open
/// /proc/1/fd/* (the agent's log pipe, its listening socket), copy descriptors out with pidfd_getfd(2)
/// and read memory with process_vm_readv(2). A process that is not dumpable passes that check only
/// for a caller holding CAP_SYS_PTRACE, which no sandbox has.
/// </summary>
/// <remarks>
/// Commands are unaffected: execve(2) makes a process dumpable again unless its credentials change.
/// Nothing in the container runs before this (the agent starts every process there), so there is
/// no window in which the sandbox could attach first.
/// </remarks>
internal static class Inspection
{
    public static void Deny()
    {
        if (Libc.prctl(Libc.PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        {
            throw SyscallException.FromLastError("prctl(PR_SET_DUMPABLE)");
        }
    }
}
