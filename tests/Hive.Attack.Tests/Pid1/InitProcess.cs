using System.Globalization;
using System.Text.Json;

namespace Hive.Attack.Tests.Pid1;

/// <summary>
/// A sandbox's init (hive-agent) as the host sees it. Pid and start time together name one process:
/// a restarted agent has another start time even if it got the same pid.
/// </summary>
public sealed record InitProcess(int Pid, long StartTime)
{
    public static async Task<InitProcess> OfAsync(string sandbox)
    {
        var (code, state, error) = await Host.RunAsync("runc", "state", "hive-" + sandbox);
        Assert.That(code, Is.Zero, "runc state: " + error);
        var pid = JsonDocument.Parse(state).RootElement.GetProperty("pid").GetInt32();
        return new InitProcess(pid, StartTimeOf(pid));
    }

    /// <summary>Field 22 of /proc/PID/stat (proc(5)); the command name before it may contain anything.</summary>
    public static long StartTimeOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return long.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1; // gone
        }
    }

    /// <summary>True while this very process exists.</summary>
    public bool IsAlive => StartTimeOf(Pid) == StartTime;

    /// <summary>Ids of the init's threads other than its main one, as the sandbox numbers them (NSpid's last field).</summary>
    public IReadOnlyList<int> ThreadIdsInside() =>
        [.. Directory.EnumerateDirectories($"/proc/{Pid}/task")
            .Select(task => File.ReadLines(Path.Combine(task, "status")).First(l => l.StartsWith("NSpid:", StringComparison.Ordinal)))
            .Select(line => int.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[^1], CultureInfo.InvariantCulture))
            .Where(tid => tid != 1)
            .Order()];

    /// <summary>The signals the init has a handler for (SigCgt, one bit per signal number − 1).</summary>
    public ulong CaughtSignals() =>
        ulong.Parse(File.ReadLines($"/proc/{Pid}/status").First(l => l.StartsWith("SigCgt:", StringComparison.Ordinal))[7..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    /// <summary>The run state letter of /proc/PID/status ("S", "R", "T" for stopped, "t" for traced…).</summary>
    public string State() =>
        File.ReadLines($"/proc/{Pid}/status").First(l => l.StartsWith("State:", StringComparison.Ordinal))[6..].Trim()[..1];

    /// <summary>Every file mapped into the init (the paths as the sandbox names them).</summary>
    public IReadOnlyList<string> MappedFiles() =>
        [.. File.ReadLines($"/proc/{Pid}/maps")
            .Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length == 6 && f[5].StartsWith('/'))
            .Select(f => f[5].Trim())
            .Distinct()];
}
