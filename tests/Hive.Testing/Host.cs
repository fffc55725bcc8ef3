using System.Diagnostics;

namespace Hive.Testing;

/// <summary>Host-side facts a test checks after a sandbox is gone, and small process helpers.</summary>
public static class Host
{
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs a program in <paramref name="cwd"/> with extra environment; kills it (and its children) on timeout.</summary>
    public static async Task<(int Code, string Stdout, string Output)> RunWithEnvAsync(string file, IReadOnlyList<string> args, string cwd, TimeSpan timeout, Dictionary<string, string> env)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in env)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var output = await stdout;
        return (process.ExitCode, output, output + await stderr);
    }

    /// <summary>Everything of sandbox <paramref name="name"/> that still exists on the host; empty when it is fully gone.</summary>
    public static async Task<List<string>> LeftoversAsync(string name, string stateDir, string? hostLink = null)
    {
        var found = new List<string>();
        foreach (var line in await File.ReadAllLinesAsync("/proc/self/mountinfo"))
        {
            if (line.Contains(stateDir, StringComparison.Ordinal) || line.Contains($"/netns/hive-{name} ", StringComparison.Ordinal) || line.Contains($"/{name}/rootfs ", StringComparison.Ordinal))
            {
                found.Add("mount: " + line);
            }
        }

        // A sandbox with a user namespace has its root file system mounted at /run/hive/<tag>/<name>/rootfs.
        foreach (var runtime in Directory.Exists("/run/hive") ? Directory.EnumerateDirectories("/run/hive").Select(t => Path.Combine(t, name)).Where(Directory.Exists) : [])
        {
            found.Add("runtime dir " + runtime);
        }

        if (File.Exists($"/run/netns/hive-{name}"))
        {
            found.Add($"netns /run/netns/hive-{name}");
        }

        var (_, runcList, _) = await RunAsync("runc", "list", "-q");
        if (runcList.Split('\n').Contains($"hive-{name}"))
        {
            found.Add($"runc container hive-{name}");
        }

        foreach (var controller in Directory.EnumerateDirectories("/sys/fs/cgroup"))
        {
            var dir = Path.Combine(controller, "hive", name);
            if (Directory.Exists(dir))
            {
                found.Add("cgroup " + dir);
            }
        }

        if (Directory.Exists(stateDir))
        {
            found.Add("state dir " + stateDir);
        }

        foreach (var proc in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                var cmdline = (await File.ReadAllTextAsync(Path.Combine(proc, "cmdline"))).Replace('\0', ' ');
                if (cmdline.Contains(stateDir, StringComparison.Ordinal))
                {
                    found.Add($"process {Path.GetFileName(proc)}: {cmdline}");
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        var (_, links, _) = await RunAsync("ip", "-o", "link", "show");
        foreach (var link in links.Split('\n').Where(l => l.Contains($"hv-{name}", StringComparison.Ordinal) || (hostLink is not null && l.Contains($" {hostLink}@", StringComparison.Ordinal))))
        {
            found.Add("link " + link);
        }

        if (hostLink is not null)
        {
            foreach (var table in new[] { "filter", "nat" })
            {
                var (_, rules, _) = await RunAsync("iptables", "-w", "5", "-t", table, "-S");
                found.AddRange(rules.Split('\n').Where(r => r.Contains(hostLink, StringComparison.Ordinal) || r.Contains("HIVE-N" + hostLink[2..], StringComparison.Ordinal) || r.Contains("HIVE-I" + hostLink[2..], StringComparison.Ordinal) || r.Contains("HIVE-O" + hostLink[2..], StringComparison.Ordinal)).Select(r => $"iptables {table}: {r}"));
            }
        }

        // Disk quotas: the sandbox's disk (in its state dir) and its workspaces' file systems (beside
        // their directories, under <data>/workspaces/<name>) are loop-mounted images. The workspace
        // images stay; nothing may stay mounted or attached.
        var workspaces = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(stateDir.TrimEnd('/'))!)!, "workspaces", name) + "/";
        foreach (var line in await File.ReadAllLinesAsync("/proc/self/mountinfo"))
        {
            if (line.Split(' ') is { Length: > 4 } fields && fields[4].StartsWith(workspaces, StringComparison.Ordinal))
            {
                found.Add("workspace mount: " + line);
            }
        }

        foreach (var device in Directory.Exists("/sys/block") ? Directory.EnumerateDirectories("/sys/block", "loop*") : [])
        {
            string file;
            try
            {
                file = (await File.ReadAllTextAsync(Path.Combine(device, "loop", "backing_file"))).Trim(); // only while bound
            }
            catch (IOException)
            {
                continue;
            }

            if (file.StartsWith(stateDir.TrimEnd('/') + "/", StringComparison.Ordinal) || file.StartsWith(workspaces, StringComparison.Ordinal))
            {
                found.Add($"loop device {Path.GetFileName(device)}: {file}");
            }
        }

        return found;
    }

    public static long ReadStatusKb(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return -1;
    }
}
