namespace Hive.Agent.Processes;

/// <summary>
/// The agent runs with oom_score_adj -998 so the OOM killer spares it; the commands it starts
/// are set back to 0 so they, not the agent, are killed when the sandbox runs out of memory.
/// </summary>
internal static class OomScore
{
    public static void MakeKillable(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/oom_score_adj", "0");
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
