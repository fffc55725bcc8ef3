namespace Hive.Controller.Hosting;

/// <summary>Facts about the host that bound what a sandbox may ask for.</summary>
internal sealed class HostFacts
{
    public long MemoryBytes { get; } = ReadMemTotal();

    public int Cpus { get; } = Environment.ProcessorCount;

    /// <summary>
    /// Size of the file system holding <paramref name="path"/> (its nearest existing ancestor): no
    /// sandbox disk or workspace quota can usefully be larger, as their sparse images live there.
    /// </summary>
    public static long FileSystemBytes(string path)
    {
        var probe = Path.GetFullPath(path);
        while (!Directory.Exists(probe) && Path.GetDirectoryName(probe) is { } parent)
        {
            probe = parent;
        }

        var fd = Hive.Interop.Libc.openat2(Hive.Interop.Libc.AT_FDCWD, probe, Hive.Interop.Libc.O_PATH | Hive.Interop.Libc.O_DIRECTORY | Hive.Interop.Libc.O_CLOEXEC, 0, 0);
        if (fd < 0)
        {
            return long.MaxValue / 4;
        }

        try
        {
            return Hive.Interop.Libc.TryStatVfs(fd, out var stat) ? (long)Math.Min(stat.Blocks * stat.Frsize, (ulong)(long.MaxValue / 4)) : long.MaxValue / 4;
        }
        finally
        {
            Hive.Interop.Libc.close(fd);
        }
    }

    /// <summary>MemTotal from /proc/meminfo (kB), or 1 TiB if unreadable.</summary>
    private static long ReadMemTotal()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                {
                    var kb = long.Parse(line.AsSpan(9).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture);
                    return kb * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return 1L << 40;
    }
}
