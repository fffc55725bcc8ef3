namespace Hive.Agent.Processes;

/// <summary>
/// When a sandbox runs out of memory the OOM killer must pick the agent's commands, not the agent
/// (PID 1: the sandbox would die with it). Lowering the agent's own score needs CAP_SYS_RESOURCE,
/// which no sandbox has and some hosts do not grant even to root (Sbxd lowers it from outside where
/// it can), so every command is raised to <see cref="ChildScore"/> as well — raising never needs a
/// privilege.
/// </summary>
internal static class OomScore
{
    public const string ChildScore = "1000";

    /// <summary>
    /// Prepended to every command so the shell raises its own score before it runs (or forks)
    /// anything of the user's; the write after spawn alone would race with the shell's first fork.
    /// </summary>
    public const string ShellPrologue = "{ echo " + ChildScore + " > /proc/self/oom_score_adj; } 2>/dev/null\n";

    public static void MakeKillable(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/oom_score_adj", ChildScore);
        }
        catch (IOException)
        {
            // The child already exited.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
