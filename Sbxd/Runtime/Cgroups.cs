using System.Globalization;

namespace Hive.Sbxd.Runtime;

/// <summary>The sandbox's cgroups (v1 hierarchy on this host kind, with a unified fallback): counters and removal.</summary>
internal sealed class Cgroups(SandboxLayout layout)
{
    private const string Root = "/sys/fs/cgroup";

    public ulong OomKills() => Hive.Interop.CgroupCounters.OomKills(layout.CgroupPath);

    public ulong MemoryUsage() =>
        ReadNumber(Path.Combine(Root, "memory", layout.CgroupPath.TrimStart('/'), "memory.usage_in_bytes"))
        ?? ReadNumber(Path.Combine(Root, layout.CgroupPath.TrimStart('/'), "memory.current"))
        ?? 0;

    public ulong CpuUsageNs() =>
        ReadNumber(Path.Combine(Root, "cpuacct", layout.CgroupPath.TrimStart('/'), "cpuacct.usage"))
        ?? ReadKeyed(Path.Combine(Root, layout.CgroupPath.TrimStart('/'), "cpu.stat"), "usage_usec") * 1000;

    public uint PidsCurrent() =>
        (uint)(ReadNumber(Path.Combine(Root, "pids", layout.CgroupPath.TrimStart('/'), "pids.current"))
        ?? ReadNumber(Path.Combine(Root, layout.CgroupPath.TrimStart('/'), "pids.current"))
        ?? 0);

    /// <summary>Every directory of this sandbox's cgroup in every hierarchy.</summary>
    public IReadOnlyList<string> Directories()
    {
        var relative = layout.CgroupPath.TrimStart('/');
        var candidates = new List<string> { Path.Combine(Root, relative) };
        if (Directory.Exists(Root))
        {
            candidates.AddRange(Directory.EnumerateDirectories(Root).Select(h => Path.Combine(h, relative)));
        }

        return candidates.Distinct().Where(Directory.Exists).ToList();
    }

    /// <summary>Kills whatever is left in the cgroups and removes them (children first), retrying while they drain.</summary>
    public async Task RemoveAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Resilience.CgroupRemoval.ExecuteAsync(
                _ =>
                {
                    RemoveOnce();
                    return ValueTask.CompletedTask;
                },
                cancellationToken);
        }
        catch (IOException)
        {
            throw new IOException("cgroups could not be removed: " + string.Join(", ", Directories()));
        }
    }

    private void RemoveOnce()
    {
        foreach (var dir in Directories())
        {
            foreach (var sub in Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories).Append(dir).OrderByDescending(d => d.Length))
            {
                foreach (var pid in Procs(sub))
                {
                    Hive.Interop.Libc.kill(pid, Hive.Interop.Libc.SIGKILL);
                }

                try
                {
                    Directory.Delete(sub);
                }
                catch (DirectoryNotFoundException)
                {
                }
            }
        }
    }

    private static IEnumerable<int> Procs(string dir)
    {
        var file = Path.Combine(dir, "cgroup.procs");
        try
        {
            return File.Exists(file) ? File.ReadAllLines(file).Select(l => int.TryParse(l, out var p) ? p : 0).Where(p => p > 0).ToList() : [];
        }
        catch (IOException)
        {
            return [];
        }
    }

    private static ulong? ReadNumber(string file)
    {
        try
        {
            return File.Exists(file) && ulong.TryParse(File.ReadAllText(file).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static ulong ReadKeyed(string file, string key) => Hive.Interop.CgroupCounters.ReadKeyed(file, key);
}
