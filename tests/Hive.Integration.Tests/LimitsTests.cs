using System.Globalization;

namespace Hive.Integration.Tests;

/// <summary>memory, pids and cpus from the create request hold inside the container.</summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class LimitsTests : SharedControllerFixture
{
    [Test]
    public async Task Memory_hog_is_oom_killed_and_the_response_says_so()
    {
        var name = Names.Unique("oom");
        await Controller.CreateAsync(new { name, memory = "64m" });
        try
        {
            var hog = await Controller.ExecAsync(name, "python3 -c 'b = bytearray(400 * 1024 * 1024); print(len(b))'", timeout: 60);
            Assert.That(hog.GetProperty("oom_killed").GetBoolean(), Is.True, hog.ToString());
            Assert.That(hog.GetProperty("exit_code").GetInt32(), Is.EqualTo(137), hog.ToString());
            var after = await Controller.ExecAsync(name, "echo alive");
            Assert.That(after.GetProperty("stdout").GetString(), Is.EqualTo("alive\n"), "the sandbox survives its command's OOM kill");
            Assert.That(after.GetProperty("oom_killed").GetBoolean(), Is.False);
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task Fork_bomb_stops_at_pids()
    {
        var name = Names.Unique("pids");
        await Controller.CreateAsync(new { name, pids = 64 });
        try
        {
            var bomb = await Controller.ExecAsync(name, "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; wait", timeout: 5);
            Assert.That(bomb.GetProperty("stderr").GetString(), Does.Contain("fork").IgnoreCase.Or.Contain("resource temporarily unavailable").IgnoreCase.Or.Contain("process limit"), bomb.ToString());
            var current = int.Parse(File.ReadAllText($"/sys/fs/cgroup/pids/hive/{name}/pids.max").Trim(), CultureInfo.InvariantCulture);
            Assert.That(current, Is.EqualTo(64));
            var after = await Controller.ExecAsync(name, "echo alive");
            Assert.That(after.GetProperty("stdout").GetString(), Is.EqualTo("alive\n"), "the timeout killed the bomb's group and the sandbox works again");
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task Half_a_cpu_is_throttled()
    {
        var name = Names.Unique("cpu");
        await Controller.CreateAsync(new { name, cpus = 0.5 });
        try
        {
            var quota = long.Parse(File.ReadAllText($"/sys/fs/cgroup/cpu/hive/{name}/cpu.cfs_quota_us").Trim(), CultureInfo.InvariantCulture);
            var period = long.Parse(File.ReadAllText($"/sys/fs/cgroup/cpu/hive/{name}/cpu.cfs_period_us").Trim(), CultureInfo.InvariantCulture);
            Assert.That((double)quota / period, Is.EqualTo(0.5).Within(0.001));

            // Two busy processes for 3 s of wall time: without a limit they would use up to 2 CPUs; the quota allows 0.5.
            var usageFile = $"/sys/fs/cgroup/cpuacct/hive/{name}/cpuacct.usage";
            var before = long.Parse(File.ReadAllText(usageFile).Trim(), CultureInfo.InvariantCulture);
            const string Spin = "python3 -c 'import os, time\npid = os.fork()\nt = time.time()\nwhile time.time() - t < 3: pass\nif pid: os.waitpid(pid, 0)\n'";
            var busy = await Controller.ExecAsync(name, Spin, timeout: 60);
            Assert.That(busy.GetProperty("exit_code").GetInt32(), Is.Zero, busy.ToString());
            var stat = File.ReadAllLines($"/sys/fs/cgroup/cpu/hive/{name}/cpu.stat")
                .Select(l => l.Split(' '))
                .ToDictionary(p => p[0], p => long.Parse(p[1], CultureInfo.InvariantCulture));
            Assert.That(stat["nr_throttled"], Is.GreaterThan(0), "the CFS quota must have throttled the busy loop");
            var usageNs = long.Parse(File.ReadAllText(usageFile).Trim(), CultureInfo.InvariantCulture) - before;
            var wallMs = busy.GetProperty("duration_ms").GetInt64();
            Assert.That(usageNs / 1e6 / wallMs, Is.LessThan(0.75), $"cpu time {usageNs / 1e6:0} ms over {wallMs} ms wall");
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
    }
}
