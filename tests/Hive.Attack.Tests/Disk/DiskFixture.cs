using System.Globalization;
using System.Text.Json;

namespace Hive.Attack.Tests.Disk;

/// <summary>
/// A Controller of its own and one sandbox with a small disk (64 MiB, so 4,096 inodes) and a
/// workspace with a small quota (32 MiB, 2,048 inodes): every limit is reached in moments. A second
/// sandbox (the neighbour) is made when a test asks for it.
/// </summary>
public abstract class DiskFixture
{
    protected const long DiskBytes = 64L << 20;
    protected const long QuotaBytes = 32L << 20;
    protected const string Workspace = "/w";

    private string? _neighbour;

    protected ControllerProcess Controller { get; private set; } = null!;

    protected string Sandbox { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Controller = await ControllerProcess.StartAsync();
        Sandbox = Names.Unique("disk");
        await Controller.CreateAsync(new { name = Sandbox, disk = "64m", fs = new[] { new { mount = Workspace, quota = "32m" } } });
    }

    [OneTimeTearDown]
    public async Task StopAsync() => await Controller.DisposeAsync();

    /// <summary>Whatever an attempt left behind goes, so the next one starts with an empty disk.</summary>
    [TearDown]
    public async Task CleanUpAsync() =>
        await Controller.ExecAsync(Sandbox, $"rm -rf /root/fill* /tmp/fill* /var/tmp/fill* /tmp/many {Workspace}/* /dev/shm/fill /dev/fill; true", timeout: 300);

    /// <summary>A second sandbox on the same host (made on first use).</summary>
    protected async Task<string> NeighbourAsync()
    {
        if (_neighbour is null)
        {
            _neighbour = Names.Unique("next");
            await Controller.CreateAsync(new { name = _neighbour, disk = "64m" });
        }

        return _neighbour;
    }

    /// <summary>Runs a shell command in the fixture's sandbox: exit code, stdout, stderr.</summary>
    protected async Task<(int Exit, string Stdout, string Stderr)> ShAsync(string command, string? sandbox = null, double timeout = 300)
    {
        var result = await Controller.ExecAsync(sandbox ?? Sandbox, command, timeout);
        return (result.GetProperty("exit_code").GetInt32(), result.GetProperty("stdout").GetString() ?? string.Empty, result.GetProperty("stderr").GetString() ?? string.Empty);
    }

    /// <summary>Runs a python script in the sandbox (base64-encoded: no quoting); its stdout, trimmed.</summary>
    protected async Task<string> PythonAsync(string script, string? sandbox = null)
    {
        var (exit, stdout, stderr) = await ShAsync($"echo {Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(script))} | base64 -d | python3 -", sandbox);
        Assert.That(exit, Is.Zero, stdout + stderr);
        return stdout.Trim();
    }

    /// <summary>Bytes the host's file system holds for <paramref name="file"/> (allocated blocks, not its apparent size).</summary>
    protected static async Task<long> AllocatedAsync(string file)
    {
        var (code, stdout, stderr) = await Host.RunAsync("stat", "-c", "%b %B", file);
        Assert.That(code, Is.Zero, stderr);
        var parts = stdout.Trim().Split(' ');
        return long.Parse(parts[0], CultureInfo.InvariantCulture) * long.Parse(parts[1], CultureInfo.InvariantCulture);
    }

    /// <summary>The sandbox's disk image on the host.</summary>
    protected string DiskImage => Path.Combine(Controller.StateDir(Sandbox), "disk.img");

    /// <summary>The workspace's image on the host (beside its directory).</summary>
    protected string WorkspaceImage => Directory.GetFiles(Path.Combine(Controller.DataDir, "workspaces", Sandbox), "*.img").Single();

    /// <summary>
    /// The sandbox still runs commands and can write again once space is freed. Freed is a state, not a
    /// moment: a deleted file's blocks return when the last descriptor on it closes (in a workspace,
    /// SbxFuse's artifact hash may still read it) and ext4 reuses them after its journal commits.
    /// </summary>
    protected async Task AssertStillWorksAsync(string path = "/root/after", long bytes = 4 << 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var (exit, stdout, stderr) = await ShAsync($"head -c {bytes} /dev/zero > {path}; s=$?; rm -f {path}; [ $s = 0 ] && echo alive");
            if ((exit, stdout) == (0, "alive\n") || DateTime.UtcNow > deadline)
            {
                Assert.That((exit, stdout), Is.EqualTo((0, "alive\n")), stderr);
                return;
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Waits for an <c>fs.*</c> event on <paramref name="path"/> that failed with <paramref name="errno"/>.</summary>
    protected async Task<JsonElement?> FailedFsEventAsync(string kind, string path, int errno)
    {
        bool Match(JsonElement e) => e.GetProperty("kind").GetString() == kind && e.GetProperty("path").GetString() == path
            && e.TryGetProperty("errno", out var n) && n.GetInt32() == errno;
        var events = await Controller.WaitForEventsAsync(Sandbox, all => all.Any(Match), kind: kind);
        return events.Where(Match).Select(e => (JsonElement?)e).FirstOrDefault();
    }
}
