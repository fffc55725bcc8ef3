using System.Diagnostics;
using System.Text.Json;

namespace Hive.SbxFuse.Tests;

/// <summary>A real hive-sbxfuse serving a temp backing dir on a temp mount point, as /workspace.</summary>
internal sealed class SbxFuseProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _stderr = [];
    private int _reloads;

    private SbxFuseProcess(string root, Process process)
    {
        Root = root;
        _process = process;
    }

    public string Root { get; }

    public string Source => Path.Combine(Root, "src");

    public string Target => Path.Combine(Root, "mnt");

    public string AclFile => Path.Combine(Root, "acls.json");

    /// <summary>Where SbxFuse hands its events over (Sbxd would sequence them into the sandbox's log).</summary>
    public string SpoolDir { get; private init; } = string.Empty;

    public int Pid => _process.Id;

    public string ControlSocket => Path.Combine(Root, "control.sock");

    public bool HasExited => _process.HasExited;

    /// <summary>Waits (up to 30 s) for the process to exit; its exit code.</summary>
    public async Task<int> ExitCodeAsync()
    {
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return _process.ExitCode;
    }

    /// <summary>Polls the spool until <paramref name="done"/> holds (or 30 s pass); the events then.</summary>
    public async Task<List<JsonElement>> WaitForAuditAsync(Func<List<JsonElement>, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var audit = await AuditAsync();
            if (done(audit) || DateTime.UtcNow > deadline)
            {
                return audit;
            }

            await Task.Delay(50);
        }
    }

    /// <param name="extraArgs">More options for hive-sbxfuse (limits, --source-id).</param>
    /// <param name="byDescriptor">Hand the backing directory over as descriptor 3 (--source-fd), as Sbxd does, instead of its path.</param>
    /// <param name="waitForMount">False: return at once (for a start that is expected to fail).</param>
    /// <param name="pinIdentity">Pass --source-id with the backing directory's own device and inode.</param>
    /// <param name="underNohup">Start it with SIGHUP and SIGINT ignored, as <c>nohup</c> or a background job would.</param>
    public static async Task<SbxFuseProcess> StartAsync(object[]? acls = null, string? spoolDir = null, Action<string>? prepare = null, string[]? extraArgs = null, bool byDescriptor = false, bool waitForMount = true, bool pinIdentity = false, bool underNohup = false)
    {
        var root = Directory.CreateTempSubdirectory("hive-sbxfuse-").FullName;
        Directory.CreateDirectory(Path.Combine(root, "src"));
        Directory.CreateDirectory(Path.Combine(root, "mnt"));
        prepare?.Invoke(Path.Combine(root, "src"));
        var spool = spoolDir ?? Path.Combine(root, "spool");
        var binary = Path.Combine(AppContext.BaseDirectory, "hive-sbxfuse");
        var args = new List<string> { "--target", Path.Combine(root, "mnt"), "--mount", "/workspace", "--spool", spool, "--source-name", "fs-0", "--control", Path.Combine(root, "control.sock") };
        if (acls is not null)
        {
            await File.WriteAllTextAsync(Path.Combine(root, "acls.json"), JsonSerializer.Serialize(acls));
            args.AddRange(["--acls", Path.Combine(root, "acls.json")]);
        }

        args.AddRange(extraArgs ?? []);
        if (pinIdentity)
        {
            args.AddRange(["--source-id", await IdentityAsync(Path.Combine(root, "src"))]);
        }

        ProcessStartInfo start;
        if (byDescriptor)
        {
            start = new ProcessStartInfo("/bin/sh", ["-c", "exec 3<\"$0\" && exec \"$@\"", Path.Combine(root, "src"), binary, "--source-fd", "3", .. args]);
        }
        else if (underNohup)
        {
            start = new ProcessStartInfo("/bin/sh", ["-c", "trap '' HUP INT && exec \"$@\"", "sh", binary, "--source", Path.Combine(root, "src"), .. args]);
        }
        else
        {
            start = new ProcessStartInfo(binary, ["--source", Path.Combine(root, "src"), .. args]);
        }

        start.UseShellExecute = false;
        start.RedirectStandardError = true;
        var process = Process.Start(start)!;
        var fs = new SbxFuseProcess(root, process) { SpoolDir = spool };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (fs._stderr)
            {
                fs._stderr.Add(e.Data);
            }

            if (e.Data.Contains("ACLs reloaded", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref fs._reloads);
            }
        };
        process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (waitForMount && !(await File.ReadAllTextAsync("/proc/self/mountinfo")).Contains(fs.Target, StringComparison.Ordinal))
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                await fs.DisposeAsync();
                throw new InvalidOperationException("hive-sbxfuse did not mount: " + string.Join('\n', fs._stderr));
            }

            await Task.Delay(20);
        }

        return fs;
    }

    public string M(string relative) => Path.Combine(Target, relative);

    /// <summary>"device:inode" of a directory (what --source-id expects).</summary>
    public static async Task<string> IdentityAsync(string directory)
    {
        var (code, output) = await GovernedMountTests.RunAsync("stat", "-c", "%d:%i", directory);
        Assert.That(code, Is.Zero, output);
        return output.Trim();
    }

    /// <summary>What the process has logged so far.</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return string.Join('\n', _stderr);
            }
        }
    }

    /// <summary>Every event in the spool so far, in order, as the API would render it.</summary>
    public Task<List<JsonElement>> AuditAsync()
    {
        using var consumer = new Hive.Events.Spool.SpoolConsumer(SpoolDir);
        var payloads = new List<ReadOnlyMemory<byte>>();
        while (consumer.Collect(payloads, 1 << 30) > 0)
        {
        }

        return Task.FromResult(payloads
            .Select(p => JsonDocument.Parse(Hive.Events.EventJson.ToUtf8("test", Hive.Protos.V1.Event.Parser.ParseFrom(p.Span))).RootElement.Clone())
            .ToList());
    }

    public async Task WriteAclsAsync(object[] acls)
    {
        var before = Volatile.Read(ref _reloads);
        await File.WriteAllTextAsync(AclFile, JsonSerializer.Serialize(acls));
        using var hup = Process.Start("kill", ["-HUP", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await hup.WaitForExitAsync();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (Volatile.Read(ref _reloads) == before)
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "hive-sbxfuse did not confirm the reload");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            using var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await term.WaitForExitAsync();
            if (!_process.WaitForExit(10_000))
            {
                _process.Kill();
            }
        }

        if ((await File.ReadAllTextAsync("/proc/self/mountinfo")).Contains(Target, StringComparison.Ordinal))
        {
            using var umount = Process.Start("umount", ["-l", Target]);
            await umount.WaitForExitAsync();
        }

        _process.Dispose();
        if (!(await File.ReadAllTextAsync("/proc/self/mountinfo")).Contains(Root, StringComparison.Ordinal))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}
