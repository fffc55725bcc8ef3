namespace Hive.Sbxd.Runtime;

/// <summary>The last lines a helper process (runc and the agent, SbxFuse, SbxProxy) wrote to its log, for error messages.</summary>
internal static class LogTail
{
    public static string Of(string file)
    {
        try
        {
            return File.Exists(file) ? string.Join(" | ", File.ReadLines(file).TakeLast(5)) : "(no output)";
        }
        catch (IOException)
        {
            return "(unreadable)";
        }
    }
}
