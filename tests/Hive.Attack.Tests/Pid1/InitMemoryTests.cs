namespace Hive.Attack.Tests.Pid1;

/// <summary>Running a small sandbox out of memory must cost the sandbox a command, never its init.</summary>
[TestFixture]
[Category(From.Inside)]
[CancelAfter(300_000)]
public sealed class InitMemoryTests : InitFixture
{
    [Test]
    [Defence("every command runs at OOM score 1000 (and the agent at -1000 where Sbxd holds CAP_SYS_RESOURCE)")]
    public async Task Filling_memory_with_processes_smaller_than_the_agent_kills_one_of_them_not_the_agent()
    {
        // Each hog is smaller than the agent (its runtime maps tens of MB), so by size alone the OOM
        // killer would pick the agent; together they overrun the limit.
        var sandbox = await CreateSandboxAsync("pid1-oom", new() { ["memory"] = "96m" });
        try
        {
            var init = await InitProcess.OfAsync(sandbox);
            var hogs = await Controller.ExecAsync(sandbox, "for i in 1 2 3 4 5; do python3 -c 'import time; b = bytearray(22 << 20); time.sleep(3)' & done; wait", timeout: 60);
            Assert.That(hogs.GetProperty("oom_killed").GetBoolean(), Is.True, "the hogs overran the limit: " + hogs);
            await AssertSameInitAsync(sandbox, init);
        }
        finally
        {
            await Controller.DestroyAsync(sandbox);
        }
    }
}
