namespace Hive.Controller.Hosting;

/// <summary>Facts about the host that bound what a sandbox may ask for.</summary>
internal sealed class HostFacts
{
    public long MemoryBytes { get; } = ReadMemTotal();

    public int Cpus { get; } = Environment.ProcessorCount;

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
