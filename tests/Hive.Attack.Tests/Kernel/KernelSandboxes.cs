namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// One Controller and two sandboxes for every attempt in this folder (they change nothing the
/// next attempt depends on): <see cref="Plain"/> without a network, and <see cref="Networked"/>
/// (network isolated, a governed workspace) whose container has every kind of mount Hive makes.
/// </summary>
[SetUpFixture]
public sealed class KernelSandboxes
{
    public static ControllerProcess Controller { get; private set; } = null!;

    /// <summary>Network <c>none</c>, no workspace.</summary>
    public static string Plain { get; private set; } = null!;

    /// <summary>Network <c>isolated</c> (resolver and CA bound in) with a workspace at /workspace.</summary>
    public static string Networked { get; private set; } = null!;

    /// <summary><see cref="Networked"/>'s own address.</summary>
    public static string NetworkedIp { get; private set; } = null!;

    /// <summary>The host end of <see cref="Networked"/>'s veth (its /30's first address).</summary>
    public static string NetworkedHostIp { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Controller = await ControllerProcess.StartAsync();
        Plain = Names.Unique("kern");
        Networked = Names.Unique("kernnet");
        await Controller.CreateAsync(new { name = Plain });
        var created = await Controller.CreateAsync(new { name = Networked, network = "isolated", fs = new[] { new { mount = "/workspace" } } });
        NetworkedIp = created.GetProperty("network").GetProperty("ip").GetString()!;
        var host = System.Net.IPAddress.Parse(NetworkedIp).GetAddressBytes();
        host[3]--;
        NetworkedHostIp = new System.Net.IPAddress(host).ToString();
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
    public static Task<(int ExitCode, string Stdout, string Stderr)> ShAsync(string sandbox, string command) => Probe.ShAsync(Controller, sandbox, command);

    /// <summary>Runs <see cref="Probe.Prelude"/> + <paramref name="script"/> with the sandbox's python3, as root; returns its stdout, trimmed.</summary>
    public static Task<string> PythonAsync(string sandbox, string script) => Probe.RunAsync(Controller, sandbox, script);

    /// <summary>The host pid of <paramref name="sandbox"/>'s init (runc state): the host reaches into the sandbox's namespaces through it.</summary>
    public static async Task<int> InitPidAsync(string sandbox)
    {
        var (code, state, error) = await Host.RunAsync("runc", "state", "hive-" + sandbox);
        Assert.That(code, Is.Zero, "runc state: " + error);
        return System.Text.Json.JsonDocument.Parse(state).RootElement.GetProperty("pid").GetInt32();
    }

    /// <summary>
    /// Runs <see cref="Probe.Prelude"/> + <paramref name="script"/> with the host's python3 and all of the
    /// host's capabilities, entered into a sandbox's namespaces by <paramref name="enter"/> (<c>ip netns exec
    /// hive-NAME</c>, <c>nsenter --target PID --mount --root --wd=/</c>): a process that regained what the
    /// sandbox lacks, to show that the defence behind that lack holds as well. Returns stdout, trimmed.
    /// </summary>
    public static async Task<string> PythonAsHostRootInsideAsync(string script, params string[] enter)
    {
        var encoded = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Probe.Prelude + "\n" + script + "\n"));
        var (exitCode, stdout, stderr) = await Host.RunAsync(enter[0], [.. enter[1..], "python3", "-c", $"import base64; exec(base64.b64decode('{encoded}'))"]);
        Assert.That(exitCode, Is.Zero, $"the probe itself failed: {stdout}\n{stderr}");
        return stdout.Trim();
    }

    /// <summary>The host's own view of <paramref name="path"/>, to show an attempt is not vacuous (the thing exists here).</summary>
    public static byte[] ReadOnHost(string path, int max = 4096)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
        var buffer = new byte[max];
        var n = file.Read(buffer, 0, max);
        return buffer[..n];
    }

}
