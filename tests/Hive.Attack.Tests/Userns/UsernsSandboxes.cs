using Hive.Attack.Tests.Kernel;

namespace Hive.Attack.Tests.Userns;

/// <summary>
/// One Controller and two sandboxes for every attempt in this folder: <see cref="First"/> (network
/// isolated, a workspace at /workspace) and <see cref="Second"/> (no network), each with its id range
/// as the create response gave it.
/// </summary>
[SetUpFixture]
public sealed class UsernsSandboxes
{
    public static ControllerProcess Controller { get; private set; } = null!;

    public static string First { get; private set; } = null!;

    public static string Second { get; private set; } = null!;

    /// <summary>Host id of <see cref="First"/>'s root (<c>user_namespace.uid_base</c>).</summary>
    public static uint FirstBase { get; private set; }

    public static uint SecondBase { get; private set; }

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Controller = await ControllerProcess.StartAsync();
        First = Names.Unique("uns");
        Second = Names.Unique("uns2");
        FirstBase = Base(await Controller.CreateAsync(new { name = First, network = "isolated", fs = new[] { new { mount = "/workspace" } } }));
        SecondBase = Base(await Controller.CreateAsync(new { name = Second }));
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (Controller is not null)
        {
            await Controller.DisposeAsync();
        }
    }

    /// <summary>Runs a shell command as root in <paramref name="sandbox"/>.</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> ShAsync(string sandbox, string command) => Kernel.Probe.ShAsync(Controller, sandbox, command);

    /// <summary>Runs <see cref="Probe.Prelude"/> + <paramref name="script"/> with the sandbox's python3, as root; its stdout, trimmed.</summary>
    public static Task<string> PythonAsync(string sandbox, string script) => Kernel.Probe.RunAsync(Controller, sandbox, script);

    /// <summary>The host pid of the sandbox's init (hive-agent).</summary>
    public static int ContainerPid(string sandbox) =>
        int.Parse(File.ReadAllText(Path.Combine(Controller.StateDir(sandbox), "container.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Where the sandbox's root file system (its overlay) is mounted in the host's mount namespace —
    /// as the host's own processes see it, outside the container.
    /// </summary>
    public static string HostRootfs(string sandbox)
    {
        var mountPoints = File.ReadLines("/proc/self/mountinfo")
            .Select(l => l.Split(' '))
            .Where(f => f.Length > 9 && f[Array.IndexOf(f, "-") + 1] == "overlay" && f[4].EndsWith($"/{sandbox}/rootfs", StringComparison.Ordinal))
            .Select(f => f[4])
            .ToList();
        Assert.That(mountPoints, Has.Count.EqualTo(1), "the sandbox's rootfs mount on the host");
        return mountPoints[0];
    }

    /// <summary>(uid, gid, mode) of a path on the host, not following a final symlink.</summary>
    public static async Task<(uint Uid, uint Gid, string Mode)> StatOnHostAsync(string path)
    {
        var (code, output, error) = await Host.RunAsync("stat", "-c", "%u %g %a", path);
        Assert.That(code, Is.Zero, error);
        var fields = output.Trim().Split(' ');
        return (uint.Parse(fields[0], System.Globalization.CultureInfo.InvariantCulture), uint.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture), fields[2]);
    }

    /// <summary><c>user_namespace.uid_base</c> of a create response; 0 when it shows none (the tests then fail on their own terms).</summary>
    private static uint Base(System.Text.Json.JsonElement created) =>
        created.TryGetProperty("user_namespace", out var userns) ? userns.GetProperty("uid_base").GetUInt32() : 0;
}
