namespace Hive.Attack.Tests.Syscalls;

/// <summary>
/// One Controller and one sandbox (network <c>none</c>) for every attempt in this folder: the
/// attempts change nothing the next one depends on. Probes run with the sandbox's python3 through
/// <see cref="Kernel.Probe.Prelude"/> (raw system calls, no libc wrapper in between).
/// </summary>
[SetUpFixture]
public sealed class SyscallSandboxes
{
    public static ControllerProcess Controller { get; private set; } = null!;

    public static string Sandbox { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Controller = await ControllerProcess.StartAsync();
        Sandbox = Names.Unique("sysc");
        await Controller.CreateAsync(new { name = Sandbox });
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (Controller is not null)
        {
            await Controller.DisposeAsync();
        }
    }

    /// <summary>Runs <see cref="Kernel.Probe.Prelude"/> + <paramref name="script"/> with the sandbox's python3, as root; its stdout, trimmed.</summary>
    public static Task<string> PythonAsync(string script) => Kernel.Probe.RunAsync(Controller, Sandbox, script);

    /// <summary>The same probe with the host's python3, outside any sandbox: the kernel's own answer, to show an attempt is not vacuous.</summary>
    public static async Task<string> OnHostAsync(string script)
    {
        var file = Path.Combine(Path.GetTempPath(), $"hive-syscall-probe-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(file, Kernel.Probe.Prelude + "\n" + script + "\n");
        try
        {
            var (exit, stdout, stderr) = await Host.RunAsync("python3", file);
            Assert.That(exit, Is.Zero, $"the probe failed on the host: {stdout}\n{stderr}");
            return stdout.Trim();
        }
        finally
        {
            File.Delete(file);
        }
    }
}
