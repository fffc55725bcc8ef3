using System.Globalization;

namespace Hive.Interop;

/// <summary>Counters of a cgroup by its path below the hierarchy root (v1 controllers, or v2 unified).</summary>
public static class CgroupCounters
{
    private const string Root = "/sys/fs/cgroup";

    /// <summary>How many processes the memory controller has OOM-killed in <paramref name="cgroupPath"/> (e.g. "/hive/box").</summary>
    public static ulong OomKills(string cgroupPath)
    {
        var relative = cgroupPath.TrimStart('/');
        var v1 = Path.Combine(Root, "memory", relative, "memory.oom_control");
        return ReadKeyed(File.Exists(v1) ? v1 : Path.Combine(Root, relative, "memory.events"), "oom_kill");
    }

    /// <summary>The value of <paramref name="key"/> in a "key value" per line cgroup file, 0 if absent.</summary>
    public static ulong ReadKeyed(string file, string key)
    {
        try
        {
            if (!File.Exists(file))
            {
                return 0;
            }

            foreach (var line in File.ReadLines(file))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 2 && parts[0] == key && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var v))
                {
                    return v;
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }
}
