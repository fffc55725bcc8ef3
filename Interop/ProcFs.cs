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

    /// <summary>True if <paramref name="pid"/> has capability number <paramref name="capability"/> in its effective set (capabilities(7)).</summary>
    public static bool HasCapability(int pid, int capability)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                {
                    var mask = ulong.Parse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
                    return (mask & (1UL << capability)) != 0;
                }
            }
        }
        catch (IOException)
        {
        }

        return false;
    }
}
