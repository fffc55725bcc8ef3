using System.Globalization;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Agent.Tests;

/// <summary>The agent as an init: what it keeps to itself (its environment) and what it will not die of.</summary>
[CancelAfter(60_000)]
public sealed class InitTests
{
    [Test]
    public async Task Commands_get_the_environment_sbxd_passes_for_them_and_nothing_of_the_agents_own()
    {
        await using var agent = await AgentProcess.StartAsync(new Dictionary<string, string>
        {
            ["HIVE_CMD_GREETING"] = "from the image",
            ["HIVE_CMD_LD_PRELOAD"] = "/opt/commands-only.so",
            ["HIVE_CMD_PATH"] = "/usr/bin:/bin",
            ["OPENSSL_CONF"] = "/agent/only.cnf",
        });
        var r = await agent.Channel.UnaryAsync<ExecRequest, ExecResponse>("/hive.v1.Agent/Exec", new ExecRequest { Command = "env | sort" }, new CallOptions(TimeSpan.FromSeconds(30)));
        var env = r.Stdout.ToStringUtf8().Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("PWD=", StringComparison.Ordinal));
        Assert.That(env, Is.EquivalentTo(new[] { "GREETING=from the image", "HOME=/root", "LD_PRELOAD=/opt/commands-only.so", "PATH=/usr/bin:/bin" }));
    }

    [TestCase("TERM")]
    [TestCase("INT")]
    [TestCase("QUIT")]
    [TestCase("HUP")]
    public async Task Termination_signals_do_not_stop_the_agent(string signal)
    {
        await using var agent = await AgentProcess.StartAsync();
        using var kill = System.Diagnostics.Process.Start("kill", ["-" + signal, agent.Pid.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.That(kill.ExitCode, Is.Zero);
        for (var i = 0; i < 5; i++)
        {
            await Task.Delay(200);
            var ping = await agent.Channel.UnaryAsync<PingRequest, PingResponse>("/hive.v1.Agent/Ping", new PingRequest(), new CallOptions(TimeSpan.FromSeconds(10)));
            Assert.That(ping.Pid, Is.EqualTo(agent.Pid));
        }
    }
}
