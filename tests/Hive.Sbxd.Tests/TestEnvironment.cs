using System.Diagnostics;

namespace Hive.Sbxd.Tests;

/// <summary>
/// Shared for the assembly: a tiny image whose rootfs is only a static busybox (no libc at all —
/// the agent must bring its own), and the agent bundle (built if the environment has none).
/// </summary>
[SetUpFixture]
public sealed class TestEnvironment
{
    public static string Root { get; private set; } = string.Empty;

    public static string ImageRootfs => Path.Combine(Root, "image", "rootfs");

    public static string AgentBundle { get; private set; } = string.Empty;

    [OneTimeSetUp]
    public async Task SetUpAsync()
    {
        Root = Directory.CreateTempSubdirectory("hive-sbxd-test-").FullName;
        var bin = Path.Combine(ImageRootfs, "bin");
        Directory.CreateDirectory(bin);
        foreach (var dir in new[] { "tmp", "root", "etc", "proc", "sys", "dev" })
        {
            Directory.CreateDirectory(Path.Combine(ImageRootfs, dir));
        }

        File.Copy("/bin/busybox", Path.Combine(bin, "busybox"));
        foreach (var applet in new[] { "sh", "ls", "cat", "echo", "sleep", "head", "tr", "ps", "dd", "hostname", "mkdir", "rm", "wc", "sync", "seq" })
        {
            File.CreateSymbolicLink(Path.Combine(bin, applet), "busybox");
        }

        await File.WriteAllTextAsync(Path.Combine(Root, "image", "image.json"), """{"env": ["PATH=/bin", "HOME=/root"], "entrypoint": [], "cmd": [], "workdir": "/"}""");

        var fromEnv = Environment.GetEnvironmentVariable("HIVE_AGENT_BUNDLE");
        if (fromEnv is { Length: > 0 } && File.Exists(Path.Combine(fromEnv, "agent", "hive-agent")))
        {
            AgentBundle = fromEnv;
            return;
        }

        AgentBundle = Path.Combine(Root, "agent-bundle");
        var repo = FindRepo();
        using var build = Process.Start(new ProcessStartInfo(Path.Combine(repo, "Agent", "bundle.sh"), [AgentBundle]) { UseShellExecute = false })!;
        await build.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        Assert.That(build.ExitCode, Is.Zero, "Agent/bundle.sh failed");
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        if (!File.ReadAllText("/proc/self/mountinfo").Contains(Root, StringComparison.Ordinal))
        {
            Directory.Delete(Root, recursive: true);
        }
    }

    private static string FindRepo()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Hive.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
