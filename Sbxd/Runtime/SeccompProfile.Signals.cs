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
/// <para>Rules on the target, where the kernel makes one possible: <c>kill</c> and
/// <c>rt_sigqueueinfo</c> to pid 1, <c>tgkill</c> and <c>rt_tgsigqueueinfo</c> to thread group 1
/// (any of the 31 classic signals; the runtime's own real-time signals, its thread activation among
/// them, still pass), and <c>prlimit64</c> setting another process's limits (a hard RLIMIT_CPU makes
/// the kernel SIGKILL the agent; a low RLIMIT_NOFILE starves it). <c>tkill</c> and
/// <c>pidfd_send_signal</c> name their target in a way no filter can check (a bare thread id, a
/// descriptor): they answer ENOSYS, as on a kernel without them, so callers fall back to the calls
/// above (glibc and the base image's tools never use either). <c>F_SETSIG</c>, which makes the kernel
/// send a chosen signal to the owner of a descriptor, may not choose a fault signal.</para>
/// <para>Integer arguments are compared on their low 32 bits (<c>SCMP_CMP_MASKED_EQ</c>): the kernel
/// truncates an <c>int</c> or <c>pid_t</c> argument, so a value with high bits set must not slip past
/// a comparison of all 64.</para>
/// </remarks>
internal static partial class SeccompProfile
{
    private const long LowWord = 0xFFFF_FFFF;
    private const long F_SETSIG = 10;

    /// <summary>SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV: the runtime's fault handlers.</summary>
    private static readonly long[] FaultSignals = [4, 5, 6, 7, 8, 11];

    private static void AddSignalRules(JsonArray syscalls)
    {
        syscalls.Add(Rule(["tkill", "pidfd_send_signal"], ENOSYS));
        syscalls.Add(Rule(["kill"], EPERM, LowWordIs(0, 1), new JsonObject { ["index"] = 1, ["value"] = 0, ["op"] = "SCMP_CMP_NE" }));
        syscalls.Add(Rule(["rt_sigqueueinfo"], EPERM, LowWordIs(0, 1)));

        // Thread group 1, any signal below 32: (sig & ~31) == 0 on the low word.
        syscalls.Add(Rule(["tgkill", "rt_tgsigqueueinfo"], EPERM, LowWordIs(0, 1), new JsonObject { ["index"] = 2, ["value"] = LowWord & ~31L, ["valueTwo"] = 0, ["op"] = "SCMP_CMP_MASKED_EQ" }));
        foreach (var signal in FaultSignals)
        {
            syscalls.Add(Rule(["kill", "rt_sigqueueinfo"], EPERM, LowWordIs(1, signal)));
            syscalls.Add(Rule(["fcntl", "fcntl64"], EPERM, LowWordIs(1, F_SETSIG), LowWordIs(2, signal)));
        }

        // Another process's limits (pid != 0) may be read, not set (new_limit != NULL).
        syscalls.Add(Rule(["prlimit64"], EPERM, new JsonObject { ["index"] = 0, ["value"] = 0, ["op"] = "SCMP_CMP_NE" }, new JsonObject { ["index"] = 2, ["value"] = 0, ["op"] = "SCMP_CMP_NE" }));
    }

    private static JsonObject LowWordIs(int index, long value) =>
        new() { ["index"] = index, ["value"] = LowWord, ["valueTwo"] = value, ["op"] = "SCMP_CMP_MASKED_EQ" };

    /// <summary>One rule; its conditions (on different arguments) must all hold.</summary>
    private static JsonObject Rule(string[] names, int errno, params JsonObject[] args)
    {
        var rule = new JsonObject
        {
            ["names"] = new JsonArray(names.Select(n => (JsonNode)n).ToArray()),
            ["action"] = "SCMP_ACT_ERRNO",
            ["errnoRet"] = errno,
        };
        if (args.Length > 0)
        {
            rule["args"] = new JsonArray(args.Select(a => (JsonNode)a).ToArray());
        }

        return rule;
    }
}
