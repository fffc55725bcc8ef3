using System.Text.Json.Nodes;

namespace Hive.Sbxd.Runtime;

/// <summary>System calls allowed only with certain arguments (signals aside: SeccompProfile.Signals.cs).</summary>
internal static partial class SeccompProfile
{
    /// <summary>CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (clone(2) reads its low 32 bits only; CLONE_NEWTIME exists for clone3 and unshare only).</summary>
    private const long NamespaceFlags = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

    /// <summary>
    /// personality(2) values that change nothing that matters: PER_LINUX, PER_LINUX32 (what
    /// <c>linux32</c>/<c>setarch</c> set for 32-bit builds), UNAME26 alone and with PER_LINUX32, and
    /// 0xffffffff, the query. Refused: ADDR_NO_RANDOMIZE (turns ASLR off for what the caller runs
    /// next), READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, ADDR_COMPAT_LAYOUT and other personas.
    /// </summary>
    internal static readonly long[] Personalities = [0x0, 0x0008, 0x20000, 0x20008, 0xFFFF_FFFF];

    /// <summary>
    /// Socket families: AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK (glibc asks routes and addresses
    /// there; ip, ss). Everything else is refused: AF_VSOCK reaches the hypervisor and is in no
    /// network namespace; AF_PACKET needs CAP_NET_RAW, which no sandbox has; the rest (AF_ALG,
    /// AF_KEY, AF_TIPC, AF_RDS, AF_XDP, Bluetooth, CAN, …) are kernel code no tool here uses.
    /// </summary>
    internal static readonly long[] SocketFamilies = [1, 2, 10, 16];

    /// <summary>The names these rules (and the signal rules) filter by argument.</summary>
    internal static readonly SyscallFamily Filtered = new(
        "Allowed with certain arguments",
        "clone without namespace flags; personality: harmless personas only; socket: AF_UNIX, AF_INET, AF_INET6, AF_NETLINK; socketpair: AF_UNIX; signals (kill, tgkill, fcntl F_SETSIG, prlimit64): see the PID 1 rules",
        ["clone", "personality", "socket", "socketpair", "kill", "tgkill", "fcntl", "prlimit64"]);

    private static IEnumerable<JsonObject> ArgumentRules()
    {
        yield return Allow(["clone"], Bits(0, NamespaceFlags, 0));
        foreach (var persona in Personalities)
        {
            yield return Allow(["personality"], LowWordIs(0, persona));
        }

        foreach (var family in SocketFamilies)
        {
            yield return Allow(["socket"], LowWordIs(0, family));
        }

        yield return Allow(["socketpair"], LowWordIs(0, 1));
    }
}
