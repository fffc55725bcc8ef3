namespace Hive.Interop;

/// <summary>Process facts from /proc.</summary>
public static class ProcFs
{
    /// <summary>True while <paramref name="pid"/> exists and has not exited (a zombie counts as gone).</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0)
        {
            return false;
        }

        try
        {
            // The state is the first field after the command name, which is in parentheses and may contain anything.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }
}
