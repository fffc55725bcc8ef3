using System.Globalization;

namespace Hive.Attack.Tests.Exhaustion;

/// <summary>
/// Exhausting the host's processes, memory and the API's own buffers from inside one sandbox: the
/// cgroup limits stop each at the sandbox's edge, and the agent (PID 1) keeps answering.
/// </summary>
[TestFixture]
[CancelAfter(600_000)]
[Category(From.Inside)]
public sealed class ResourceLimitTests : ExhaustionFixture
{
    protected override object SandboxSpec(string name) => new { name, memory = "128m", pids = 64 };

    [Test]
    [Defence("pids cgroup limit and the exec timeout's process-group kill")]
    public async Task A_fork_bomb_stops_at_the_pids_limit_and_the_agent_still_answers()
    {
        // The shell itself then spins without forking, so the command lasts until its timeout kills the whole group.
        var bomb = await Controller.ExecAsync(Sandbox, "bomb() { bomb | bomb & }; bomb; while :; do :; done", timeout: 5);
        Assert.That(bomb.GetProperty("timed_out").GetBoolean(), Is.True, bomb.ToString());
        Assert.That(bomb.GetProperty("stderr").GetString(), Does.Contain("fork").IgnoreCase, bomb.ToString());
        var max = int.Parse(File.ReadAllText($"/sys/fs/cgroup/pids/hive/{Sandbox}/pids.max").Trim(), CultureInfo.InvariantCulture);
        Assert.That(max, Is.EqualTo(64));
        Assert.That(int.Parse(File.ReadAllText($"/sys/fs/cgroup/pids/hive/{Sandbox}/pids.events").Split(' ')[1].Trim(), CultureInfo.InvariantCulture), Is.GreaterThan(0), "forks were refused at the limit");

        var after = await Controller.ExecAsync(Sandbox, "echo alive");
        Assert.That(after.GetProperty("stdout").GetString(), Is.EqualTo("alive\n"), after.ToString());
        var lifecycle = await Controller.EventsAsync(Sandbox, kind: "lifecycle");
        Assert.That(lifecycle.Select(Kind), Has.None.EqualTo("lifecycle.stopped").And.None.EqualTo("lifecycle.restarted"), "the agent was never lost");
    }

    [Test]
    [Defence("memory cgroup limit; commands, not the agent, are the OOM killer's victims")]
    public async Task A_memory_hog_is_killed_at_the_memory_limit_and_the_sandbox_still_answers()
    {
        // Several hogs at once, each growing until the kernel steps in.
        var hog = await Controller.ExecAsync(Sandbox, "for i in 1 2 3 4; do python3 -c 'a = []\nwhile True: a.append(bytearray(1 << 20))' & done; wait", timeout: 120);
        Assert.That(hog.GetProperty("oom_killed").GetBoolean(), Is.True, hog.ToString());
        var limit = long.Parse(File.ReadAllText($"/sys/fs/cgroup/memory/hive/{Sandbox}/memory.limit_in_bytes").Trim(), CultureInfo.InvariantCulture);
        Assert.That(limit, Is.EqualTo(128L * 1024 * 1024));

        var after = await Controller.ExecAsync(Sandbox, "echo alive");
        Assert.That(after.GetProperty("stdout").GetString(), Is.EqualTo("alive\n"), after.ToString());
        var events = await WaitForAsync(all => all.Any(e => Kind(e) == "lifecycle.oom"), kind: "lifecycle");
        Assert.That(events.Select(Kind), Does.Contain("lifecycle.oom"), "the OOM kill is on record");
        Assert.That(events.Select(Kind), Has.None.EqualTo("lifecycle.stopped").And.None.EqualTo("lifecycle.restarted"), "the agent (PID 1) was not the victim");
    }

    [Test]
    [Defence("exec output capped at 1 MiB per stream (docs/API.md)")]
    public async Task A_huge_stdout_is_cut_at_the_documented_cap()
    {
        var run = await Controller.ExecAsync(Sandbox, "head -c 200000000 /dev/zero | tr '\\0' a; echo done >&2", timeout: 300);
        var stdout = run.GetProperty("stdout").GetString()!;
        Assert.That(run.GetProperty("stdout_truncated").GetBoolean(), Is.True);
        Assert.That(System.Text.Encoding.UTF8.GetByteCount(stdout), Is.LessThanOrEqualTo((1024 * 1024) + 256), "1 MiB and a truncation marker");
        Assert.That(stdout, Does.StartWith(new string('a', 1000)));
        Assert.That(run.GetProperty("stderr").GetString(), Is.EqualTo("done\n"), "the command ran to its end");
        Assert.That(run.GetProperty("exit_code").GetInt32(), Is.Zero);

        var finished = await WaitForAsync(all => all.Any(e => Kind(e) == "exec.finished" && e.GetProperty("stdout_bytes").GetInt64() > 0), kind: "exec.finished");
        Assert.That(finished.Last().GetProperty("stdout_bytes").GetInt64(), Is.EqualTo(200_000_000), "the record says how much it wrote");
        var after = await Controller.ExecAsync(Sandbox, "echo alive");
        Assert.That(after.GetProperty("stdout").GetString(), Is.EqualTo("alive\n"));
    }
}
