using System.Globalization;
using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>
/// hive-agent's stdout/stderr is a FIFO Sbxd drains into agent.log: while no Sbxd reads it the agent
/// neither blocks nor dies (its writes meet EPIPE), and the next Sbxd reads on.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
public sealed class AgentOutputTests : SharedControllerFixture
{
    [Test]
    public async Task The_agent_outlives_a_dead_sbxd_and_its_output_reaches_the_log_again_after_the_restart()
    {
        var name = Names.Unique("out");
        await Controller.CreateAsync(new { name });
        try
        {
            var stateDir = Controller.StateDir(name);
            var (_, state, _) = await Host.RunAsync("runc", "state", "hive-" + name);
            var agentPid = JsonDocument.Parse(state).RootElement.GetProperty("pid").GetInt32();
            var thread = Directory.EnumerateDirectories($"/proc/{agentPid}/task")
                .Select(task => File.ReadLines(Path.Combine(task, "status")).First(l => l.StartsWith("NSpid:", StringComparison.Ordinal)).Split('\t')[^1])
                .First(tid => tid != "1");

            var sbxd = (await File.ReadAllTextAsync(Path.Combine(stateDir, "sbxd.pid"))).Trim();
            await Host.RunAsync("kill", "-KILL", sbxd);

            // Nobody reads the agent's output now; the agent reports the first SIGHUP it ignores.
            var hup = await Controller.ExecAsync(name, $"kill -HUP {thread} && echo sent");
            Assert.That(hup.GetProperty("stdout").GetString(), Is.EqualTo("sent\n"));
            var alive = await Controller.ExecAsync(name, "echo alive");
            Assert.That(alive.GetProperty("stdout").GetString(), Is.EqualTo("alive\n"), "the agent answers while no Sbxd runs");

            // The supervisor starts a new Sbxd, which opens the FIFO again.
            var fifo = Path.Combine(stateDir, "agent.fifo");
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (DateTime.UtcNow < deadline && !ReadsFifo(stateDir, sbxd, fifo))
            {
                await Task.Delay(200);
            }

            Assert.That(ReadsFifo(stateDir, sbxd, fifo), Is.True, "a new Sbxd reads the agent's output");
            await Controller.ExecAsync(name, $"kill -INT {thread}");
            var log = Path.Combine(stateDir, "agent.log");
            var text = string.Empty;
            while (DateTime.UtcNow < deadline && !text.Contains("Ignored SIGINT", StringComparison.Ordinal))
            {
                await Task.Delay(100);
                text = File.Exists(log) ? await File.ReadAllTextAsync(log) : string.Empty;
            }

            Assert.That(text, Does.Contain("Ignored SIGINT"), "the new Sbxd drains the agent's output");
            (_, state, _) = await Host.RunAsync("runc", "state", "hive-" + name);
            Assert.That(JsonDocument.Parse(state).RootElement.GetProperty("pid").GetInt32(), Is.EqualTo(agentPid), "the same agent throughout");
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
    }

    /// <summary>True once an Sbxd other than <paramref name="oldPid"/> holds <paramref name="fifo"/> open.</summary>
    private static bool ReadsFifo(string stateDir, string oldPid, string fifo)
    {
        try
        {
            var pid = File.ReadAllText(Path.Combine(stateDir, "sbxd.pid")).Trim();
            return pid != oldPid && Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Any(fd => new FileInfo(fd).LinkTarget == fifo);
        }
        catch (IOException)
        {
            return false;
        }
    }
}
