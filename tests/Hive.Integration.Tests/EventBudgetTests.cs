using System.Globalization;
using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>
/// The event budget's defaults against ordinary work: a clone, a package install and a build-like
/// burst of files never meet the default rate (20,000 events/s, burst 200,000), so the budget only
/// ever slows floods. The peak rates measured are written to the test output.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
public sealed class EventBudgetTests : SharedControllerFixture
{
    private static string Kind(JsonElement e) => e.GetProperty("kind").GetString()!;

    [Test]
    public async Task Normal_work_never_meets_the_rate()
    {
        var name = Names.Unique("normal");
        await Controller.CreateAsync(new { name, cpus = 2, fs = new[] { new { mount = "/workspace" } } });
        try
        {
            // A repository of 300 files, committed, then cloned — all through the audited workspace.
            var git = await Controller.ExecAsync(name, """
                set -e
                mkdir -p /workspace/src && cd /workspace/src
                git init -q . && git config user.email t@t && git config user.name t
                for d in 1 2 3 4 5 6; do mkdir -p m$d; for f in $(seq 50); do echo "def f$f(): return $f" > m$d/f$f.py; done; done
                git add -A && git commit -qm initial
                git clone -q /workspace/src /workspace/clone
                ls /workspace/clone | wc -l
                """, timeout: 600);
            Assert.That(git.GetProperty("exit_code").GetInt32(), Is.Zero, git.ToString());

            // A package of 300 modules installed with pip (from the workspace: no index is reachable here).
            var pip = await Controller.ExecAsync(name, """
                set -e
                mkdir -p /workspace/pkg/hivedemo && cd /workspace/pkg
                printf 'from setuptools import setup\nsetup(name="hivedemo", version="1.0", packages=["hivedemo"])\n' > setup.py
                touch hivedemo/__init__.py
                for f in $(seq 300); do echo "X = $f" > hivedemo/mod$f.py; done
                pip install -q --no-index --no-build-isolation --break-system-packages --target /workspace/site /workspace/pkg
                ls /workspace/site/hivedemo | wc -l
                """, timeout: 600);
            Assert.That(pip.GetProperty("exit_code").GetInt32(), Is.Zero, pip.ToString());

            // And a build-like burst: copy a tree of system headers-sized files and delete it again.
            var copy = await Controller.ExecAsync(name, "cp -r /usr/lib/python3.11/email /workspace/copy && find /workspace/copy -type f | wc -l && rm -rf /workspace/copy", timeout: 600);
            Assert.That(copy.GetProperty("exit_code").GetInt32(), Is.Zero, copy.ToString());

            var (status, budget) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}/events/budget");
            Assert.That(status, Is.EqualTo(200), budget.ToString());
            Assert.That(budget.GetProperty("throttled").GetInt64(), Is.Zero, "ordinary work never waits for the rate");
            Assert.That(budget.GetProperty("exhausted").GetBoolean(), Is.False);

            var events = await Controller.EventsAsync(name);
            Assert.That(events.Select(Kind), Has.None.StartWith("audit."));
            var perSecond = events
                .GroupBy(e => DateTimeOffset.Parse(e.GetProperty("ts").GetString()!, CultureInfo.InvariantCulture).ToUnixTimeSeconds())
                .Select(g => g.Count())
                .ToList();
            await TestContext.Out.WriteLineAsync($"events: {events.Count} in all, peak {perSecond.Max()} in one second, {budget.GetProperty("used_bytes").GetInt64()} bytes of log; default rate 20000/s, burst 200000");
            Assert.That(perSecond.Max(), Is.LessThan(200_000), "even the busiest second fits in the burst");
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
    }
}
