using System.Diagnostics;
using Google.Protobuf;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Sbxd.Tests;

/// <summary>A sandbox run by the real hive-sbxd binary against real runc, in a private state dir.</summary>
internal sealed class SbxdProcess : IAsyncDisposable
{
    private Process? _process;

    public SbxdProcess(string name, ulong memory = 256UL << 20, uint pids = 64, uint cpuMillis = 1000)
    {
        Name = name;
        StateDir = Path.Combine(TestEnvironment.Root, "sandboxes", name);
        Directory.CreateDirectory(StateDir);
        var spec = new SandboxSpec
        {
            Name = name,
            Image = "busybox",
            MemoryBytes = memory,
            CpuMillis = cpuMillis,
            Pids = pids,
            Network = NetworkMode.None,
            ImageRootfs = TestEnvironment.ImageRootfs,
            AgentBundle = TestEnvironment.AgentBundle,
            CreatedAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        spec.Env["FROM_SPEC"] = "yes";
        File.WriteAllBytes(Path.Combine(StateDir, "spec.pb"), spec.ToByteArray());
        Channel = GrpcChannel.ForUnixSocket(Path.Combine(StateDir, "sbxd.sock"));
    }

    public string Name { get; }

    public string StateDir { get; }

    public GrpcChannel Channel { get; }

    public int Pid => _process?.Id ?? 0;

    public static string Binary => Path.Combine(AppContext.BaseDirectory, "hive-sbxd");

    public async Task StartAsync()
    {
        var start = new ProcessStartInfo(Binary, ["--state-dir", StateDir]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        _process = Process.Start(start)!;
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        await WaitRunningAsync();
    }

    public async Task<SandboxStatus> StatusAsync() =>
        await Channel.UnaryAsync<GetStatusRequest, SandboxStatus>("/hive.v1.Sandbox/GetStatus", new GetStatusRequest(), new CallOptions(TimeSpan.FromSeconds(5)));

    public async Task WaitRunningAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            try
            {
                var status = await StatusAsync();
                if (status.State == SandboxState.Running)
                {
                    return;
                }

                Assert.That(status.State, Is.Not.EqualTo(SandboxState.Failed), status.Error);
            }
            catch (RpcException) when (DateTime.UtcNow < deadline)
            {
            }

            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "sandbox did not become ready");
            await Task.Delay(50);
        }
    }

    public Task<ExecResponse> ExecAsync(string command, uint timeoutMs = 0) =>
        Channel.UnaryAsync<ExecRequest, ExecResponse>("/hive.v1.Sandbox/Exec", new ExecRequest { Command = command, TimeoutMs = timeoutMs }, new CallOptions(TimeSpan.FromSeconds(60)));

    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    public async Task<int> DestroyCommandAsync()
    {
        using var destroy = Process.Start(new ProcessStartInfo(Binary, ["--state-dir", StateDir, "--destroy"]) { UseShellExecute = false })!;
        await destroy.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return destroy.ExitCode;
    }

    /// <summary>What of this sandbox still exists on the host.</summary>
    public async Task<List<string>> LeftoversAsync()
    {
        var found = new List<string>();
        var mounts = await File.ReadAllTextAsync("/proc/self/mountinfo");
        if (mounts.Contains(StateDir, StringComparison.Ordinal))
        {
            found.Add("mount under " + StateDir);
        }

        if (mounts.Contains($"/run/netns/hive-{Name} ", StringComparison.Ordinal) || File.Exists($"/run/netns/hive-{Name}"))
        {
            found.Add("netns");
        }

        using var runc = Process.Start(new ProcessStartInfo("runc", ["list", "-q"]) { RedirectStandardOutput = true, UseShellExecute = false })!;
        var list = await runc.StandardOutput.ReadToEndAsync();
        await runc.WaitForExitAsync();
        if (list.Split('\n').Contains($"hive-{Name}"))
        {
            found.Add("runc container");
        }

        found.AddRange(Directory.EnumerateDirectories("/sys/fs/cgroup").Select(c => Path.Combine(c, "hive", Name)).Where(Directory.Exists).Select(d => "cgroup " + d));
        if (Directory.Exists(StateDir))
        {
            found.Add("state dir");
        }

        return found;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        Channel.Dispose();
        if (Directory.Exists(StateDir))
        {
            await DestroyCommandAsync();
        }

        _process?.Dispose();
    }
}
