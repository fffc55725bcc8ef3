using System.Text.Json.Nodes;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// Signals: the sandbox must not be able to stop, crash or throttle its init (hive-agent, PID 1).
/// </summary>
/// <remarks>
/// <para>The kernel already drops, for the init of a pid namespace, every signal sent from inside
/// that has no handler (SIGKILL and SIGSTOP included). The agent ignores the termination signals it
/// handles (SIGTERM, SIGINT, SIGQUIT, SIGHUP). What is left are the .NET runtime's fault handlers —
/// SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT — which cannot be given up (they turn faults in
/// managed code into exceptions), and a fault signal sent with <c>kill</c> either throws an exception
/// on whatever managed code runs at that moment or disarms the handler for the next real fault. Those
/// may not be sent at all, to anyone: <c>kill(2)</c> with a thread id signals that thread's whole
/// process, so no filter on the target pid could single PID 1 out.</para>
/// <para>Refused, where the kernel makes a rule on the target possible: <c>kill</c> to pid 1 (any
/// signal but 0, the existence probe, and the real-time ones, which <c>tgkill</c> may send its
/// threads anyway), <c>tgkill</c> to thread group 1 (any of the 31 classic signals; the runtime's
/// own real-time signals, its thread activation among them, still pass), and <c>prlimit64</c>
/// setting another process's limits (a hard RLIMIT_CPU makes the kernel SIGKILL the agent; a low
/// RLIMIT_NOFILE starves it). <c>tkill</c> and <c>pidfd_send_signal</c> name their target in a way
/// no filter can check (a bare thread id, a descriptor): they answer ENOSYS, as on a kernel without
/// them, so callers fall back to the calls above (glibc and the base image's tools never use
/// either); <c>rt_sigqueueinfo</c> and <c>rt_tgsigqueueinfo</c> are not allowed at all.
/// <c>F_SETSIG</c>, which makes the kernel send a chosen signal to the owner of a descriptor, may not
/// choose a fault signal.</para>
/// <para>The filter refuses by default, and runc drops any rule that merely repeats the default
/// (EPERM), so each refusal is written as its complement: the allowed cases, as a union of rules
/// whose conditions (on different arguments) all hold. Integer arguments are compared on their low
/// 32 bits (<c>SCMP_CMP_MASKED_EQ</c>): the kernel truncates an <c>int</c> or <c>pid_t</c>
/// argument, so a value with high bits set must be read as the kernel reads it. "Not 1" on 32 bits
/// is no single comparison; <see cref="OtherThanPid1"/> spells it as patterns of bits.</para>
/// </remarks>
internal static partial class SeccompProfile
{
    private const long F_SETSIG = 10;

    /// <summary>
    /// A pid (or thread group id) the kernel reads as anything but 1, among those that can exist:
    /// 0 (the caller's process group), every pid below PID_MAX_LIMIT (2^22: some bit 1–21 set) and
    /// every process group or -1 down to -2^22 (bits 22–31 set). Each is one masked comparison.
    /// </summary>
    private static IEnumerable<(long Mask, long Value)> OtherThanPid1()
    {
        yield return (LowWord, 0);
        for (var bit = 1; bit < 22; bit++)
        {
            yield return (1L << bit, 1L << bit);
        }

        yield return (0xFFC0_0000, 0xFFC0_0000);
    }

    /// <summary>0 (the existence probe) and the real-time signals 32–64.</summary>
    private static readonly (long Mask, long Value)[] ProbeOrRealTime = [(LowWord, 0), (LowWord & ~31L, 32), (LowWord, 64)];

    /// <summary>The real-time signals 32–64.</summary>
    private static readonly (long Mask, long Value)[] RealTime = [(LowWord & ~31L, 32), (LowWord, 64)];

    /// <summary>Signals 0–64 but the runtime's fault signals (SIGILL 4, SIGTRAP 5, SIGABRT 6, SIGBUS 7, SIGFPE 8, SIGSEGV 11).</summary>
    private static readonly (long Mask, long Value)[] NotAFault = [(LowWord & ~3L, 0), (LowWord, 9), (LowWord, 10), (LowWord & ~3L, 12), (LowWord & ~15L, 16), (LowWord & ~31L, 32), (LowWord, 64)];

    /// <summary>
    /// fcntl commands but F_SETSIG (10), among those that exist: 0–63 (F_DUPFD … F_GETOWNER_UIDS, the
    /// open-file-description locks 36–38) and 1024–2047 (F_SETLEASE … the Linux-specific ones).
    /// </summary>
    private static readonly (long Mask, long Value)[] FcntlOtherThanSetsig = [(LowWord & ~7L, 0), (LowWord & ~1L, 8), (LowWord, 11), (LowWord & ~3L, 12), (LowWord & ~15L, 16), (LowWord & ~31L, 32), (LowWord & ~1023L, 1024)];

    private static IEnumerable<JsonObject> SignalRules()
    {
        // kill(pid, sig): a probe or a real-time signal to anyone; any other but a fault signal to anyone but pid 1.
        foreach (var (mask, value) in ProbeOrRealTime)
        {
            yield return Allow(["kill"], Bits(1, mask, value));
        }

        foreach (var (pidMask, pid) in OtherThanPid1())
        {
            foreach (var (mask, value) in NotAFault.Where(s => s.Value < 32))
            {
                yield return Allow(["kill"], Bits(0, pidMask, pid), Bits(1, mask, value));
            }
        }

        // tgkill(tgid, tid, sig): any thread group but 1; real-time signals to any.
        foreach (var (pidMask, pid) in OtherThanPid1())
        {
            yield return Allow(["tgkill"], Bits(0, pidMask, pid));
        }

        foreach (var (mask, value) in RealTime)
        {
            yield return Allow(["tgkill"], Bits(2, mask, value));
        }

        // fcntl(fd, cmd, arg): any command but F_SETSIG; F_SETSIG with a signal that is not a fault signal.
        foreach (var (mask, value) in FcntlOtherThanSetsig)
        {
            yield return Allow(["fcntl"], Bits(1, mask, value));
        }

        foreach (var (mask, value) in NotAFault)
        {
            yield return Allow(["fcntl"], LowWordIs(1, F_SETSIG), Bits(2, mask, value));
        }

        // prlimit64(pid, resource, new, old): its own limits (pid 0), or only reading another's (new == NULL).
        yield return Allow(["prlimit64"], LowWordIs(0, 0));
        yield return Allow(["prlimit64"], Is(2, 0));
    }
}
