using System.Text.Json.Nodes;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// The sandbox's seccomp filter: an allow-list. Every system call the agent, the shells, python,
/// node, git, pip, npm, apt and dpkg need is named (<see cref="Allowed"/>), a few only with certain
/// arguments (<see cref="ArgumentRules"/>, <see cref="SignalRules"/>); everything else fails with
/// EPERM — what a sandboxed root must never reach (<see cref="Denied"/>) and whatever the kernel
/// adds later.
/// </summary>
/// <remarks>
/// <para>Written from the kernel's x86_64 table (asm/unistd_64.h, numbers 0–450): every entry of it
/// is either allowed, allowed with an argument filter, answered ENOSYS, or denied, each in a family
/// with its reason (Hive.Sbxd.Tests checks that the table is covered and the lists are disjoint).
/// The default profile Docker and Kubernetes ship was the reference for what programs in containers
/// commonly need.</para>
/// <para>How runc 1.1 (libseccomp 2.5) reads this profile shapes it:</para>
/// <list type="bullet">
/// <item>A rule whose action equals the default (EPERM) is skipped, so nothing can be refused by a
/// rule: every refusal is a gap between allow rules, and argument filters are written as the
/// allowed cases (<see cref="SignalRules"/>). The denied names are still listed with EPERM — they
/// document the decision, and runc counts them below.</item>
/// <item>Syscall numbers above the highest one the profile names (here 450) answer ENOSYS, not
/// EPERM: runc puts a stub in front of the filter so that libc falls back from calls newer than the
/// profile (glibc does so only on ENOSYS — fchmodat2, map_shadow_stack, …). Such a call never
/// reaches the kernel either way.</item>
/// <item>Two comparisons of the same argument in one rule become two rules (OR, not AND), so each
/// rule compares an argument at most once (<see cref="Allow"/> enforces it).</item>
/// <item>Only x86_64 is listed: a 32-bit system call (<c>int 0x80</c>, <c>sysenter</c>) or an x32 one
/// (bit 30 of the number) meets libseccomp's bad-architecture action and the calling thread is
/// killed with SIGSYS. Nothing in the base image is 32-bit, the kernel has no x32 ABI, and the
/// compat entry points are a large second copy of the kernel's interface.</item>
/// </list>
/// <para>The filter is installed by runc just before it executes the agent (no_new_privileges is
/// set), so what runc still does afterwards — open and write its exec FIFO, close, execve — is in
/// the list as well, as is everything the .NET runtime of the agent uses.</para>
/// </remarks>
internal static partial class SeccompProfile
{
    private const int EPERM = 1;
    private const int ENOSYS = 38;

    /// <summary>The low 32 bits: the kernel reads <c>int</c>, <c>pid_t</c> and <c>unsigned int</c> arguments from these only.</summary>
    private const long LowWord = 0xFFFF_FFFF;

    /// <summary>Answered ENOSYS, as on a kernel without them, so that callers fall back to a call the filter can check.</summary>
    internal static readonly SyscallFamily NotImplemented = new(
        "Answered \"not implemented\"",
        "clone3 passes its flags in memory a filter cannot read (glibc falls back to clone, whose flags it can); tkill and pidfd_send_signal name their target in a way no filter can check (see the signal rules)",
        ["clone3", "tkill", "pidfd_send_signal"]);

    public static JsonObject Build()
    {
        var syscalls = new JsonArray
        {
            Allow(Allowed.SelectMany(f => f.Syscalls).ToArray()),
            Errno(NotImplemented.Syscalls, ENOSYS),
        };
        foreach (var rule in ArgumentRules().Concat(SignalRules()))
        {
            syscalls.Add(rule);
        }

        // Redundant with the default action (runc skips it); see the remarks.
        syscalls.Add(Errno(Denied.SelectMany(f => f.Syscalls).ToArray(), EPERM));
        return new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ERRNO",
            ["defaultErrnoRet"] = EPERM,
            ["architectures"] = new JsonArray("SCMP_ARCH_X86_64"),
            ["syscalls"] = syscalls,
        };
    }

    /// <summary>Allows <paramref name="names"/> when every condition in <paramref name="args"/> holds (none: always).</summary>
    private static JsonObject Allow(string[] names, params JsonObject[] args)
    {
        if (args.Select(a => (int)a["index"]!).Distinct().Count() != args.Length)
        {
            throw new ArgumentException("runc turns two comparisons of one argument into two rules (OR): compare each argument once per rule", nameof(args));
        }

        var rule = new JsonObject
        {
            ["names"] = new JsonArray(names.Select(n => (JsonNode)n).ToArray()),
            ["action"] = "SCMP_ACT_ALLOW",
        };
        if (args.Length > 0)
        {
            rule["args"] = new JsonArray(args.Select(a => (JsonNode)a).ToArray());
        }

        return rule;
    }

    private static JsonObject Errno(string[] names, int errno) => new()
    {
        ["names"] = new JsonArray(names.Select(n => (JsonNode)n).ToArray()),
        ["action"] = "SCMP_ACT_ERRNO",
        ["errnoRet"] = errno,
    };

    /// <summary>Argument <paramref name="index"/> has <paramref name="value"/> in the bits of <paramref name="mask"/> (bits above 31 of the mask are never set here: the kernel ignores them for these arguments).</summary>
    private static JsonObject Bits(int index, long mask, long value) =>
        new() { ["index"] = index, ["value"] = mask, ["valueTwo"] = value, ["op"] = "SCMP_CMP_MASKED_EQ" };

    /// <summary>Argument <paramref name="index"/>, read as the kernel reads an <c>int</c>, is <paramref name="value"/>.</summary>
    private static JsonObject LowWordIs(int index, long value) => Bits(index, LowWord, value);

    /// <summary>Argument <paramref name="index"/>, all 64 bits (a pointer), is <paramref name="value"/>.</summary>
    private static JsonObject Is(int index, long value) =>
        new() { ["index"] = index, ["value"] = value, ["op"] = "SCMP_CMP_EQ" };
}
