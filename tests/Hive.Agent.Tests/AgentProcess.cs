using System.Diagnostics;
using Hive.Wire;

namespace Hive.Agent.Tests;

/// <summary>The built hive-agent as a child process listening on a Unix socket in a temp dir.</summary>
internal sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    private AgentProcess(Process process, string dir, GrpcChannel channel)
    {
        _process = process;
        _dir = dir;
        Channel = channel;
    }

    public GrpcChannel Channel { get; }

    public int Pid => _process.Id;

    public static async Task<AgentProcess> StartAsync(IReadOnlyDictionary<string, string>? environment = null)
    {
        var dir = Directory.CreateTempSubdirectory("hive-agent-test-").FullName;
        var socket = Path.Combine(dir, "agent.sock");
        var agent = Path.Combine(AppContext.BaseDirectory, "hive-agent");
        var start = new ProcessStartInfo(agent, ["--listen-unix", socket]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        start.Environment["HIVE_AGENT_SECRET"] = "must-not-leak";
        start.Environment["DOTNET_gcServer"] = "0";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start)!;
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(socket))
        {
            if (DateTime.UtcNow > deadline || process.HasExited)
            {
                throw new InvalidOperationException("agent did not start listening");
            }

            await Task.Delay(20);
        }

        return new AgentProcess(process, dir, GrpcChannel.ForUnixSocket(socket));
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }

        _process.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
