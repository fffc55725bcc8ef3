using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>
/// The user namespace end to end: the range in the responses, a workspace that keeps its owners
/// when its sandbox comes back with another range, the range kept across restarts, released on
/// destroy, and <c>--userns off</c>.
/// </summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class UserNamespaceTests
{
    private static uint Base(JsonElement sandbox) => sandbox.GetProperty("user_namespace").GetProperty("uid_base").GetUInt32();

    private static async Task<string> ShAsync(ControllerProcess hive, string name, string command)
    {
        var result = await hive.ExecAsync(name, command, timeout: 120);
        Assert.That(result.GetProperty("exit_code").GetInt32(), Is.Zero, result.GetProperty("stderr").GetString());
        return result.GetProperty("stdout").GetString() ?? string.Empty;
    }

    [Test]
    public async Task A_workspace_keeps_its_owners_when_its_sandbox_comes_back_with_another_range()
    {
        await using var hive = await ControllerProcess.StartAsync();
        var name = Names.Unique("unsws");
        var fs = new[] { new { mount = "/workspace" } };
        var first = await hive.CreateAsync(new { name, fs });
        Assert.That(first.GetProperty("user_namespace").GetProperty("size").GetInt32(), Is.EqualTo(65536));
        await ShAsync(hive, name, """
            useradd -u 1000 -m bob && mkdir /workspace/bob && chown bob:bob /workspace/bob && chmod 0700 /workspace/bob
            setpriv --reuid 1000 --regid 1000 --init-groups sh -c 'echo one > /workspace/bob/notes'
            echo root > /workspace/rootfile && chmod 0600 /workspace/rootfile
            """);
        await hive.DestroyAsync(name);

        // Another sandbox takes the freed range, so the name comes back with the next one.
        var filler = Names.Unique("unsfill");
        var taken = await hive.CreateAsync(new { name = filler });
        var second = await hive.CreateAsync(new { name, fs });
        Assert.That(Base(second), Is.Not.EqualTo(Base(first)), "a different range this time");
        Assert.That(Base(taken), Is.EqualTo(Base(first)), "the freed range was handed out again");

        var owners = await ShAsync(hive, name, "cat /proc/self/uid_map; stat -c '%n %u:%g %a' /workspace/bob /workspace/bob/notes /workspace/rootfile");
        Assert.That(owners.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))), Is.EqualTo(new[]
        {
            $"0 {Base(second)} 65536",
            "/workspace/bob 1000:1000 700",
            "/workspace/bob/notes 1000:1000 644",
            "/workspace/rootfile 0:0 600",
        }));

        // The same users, the same rights: uid 1000 (no account in this new sandbox yet) writes its own file, not root's.
        var asBob = await hive.ExecAsync(name, "setpriv --reuid 1000 --regid 1000 --clear-groups sh -c 'echo two >> /workspace/bob/notes && cat /workspace/bob/notes; cat /workspace/rootfile'", timeout: 60);
        Assert.That(asBob.GetProperty("stdout").GetString(), Is.EqualTo("one\ntwo\n"));
        Assert.That(asBob.GetProperty("stderr").GetString(), Does.Contain("Permission denied"));

        var backing = Directory.GetDirectories(Path.Combine(hive.DataDir, "workspaces", name)).Single();
        var (_, stored, _) = await Host.RunAsync("stat", "-c", "%u:%g", Path.Combine(backing, "bob", "notes"), Path.Combine(backing, "rootfile"));
        Assert.That(stored, Is.EqualTo("1000:1000\n0:0\n"), "the backing directory keeps the sandbox's own ids, whatever its range");
    }

    [Test]
    public async Task The_range_is_kept_across_restarts_and_released_on_destroy()
    {
        await using var hive = await ControllerProcess.StartAsync();
        var name = Names.Unique("unsre");
        var created = await hive.CreateAsync(new { name, network = "isolated" });
        var idBase = Base(created);
        var state = hive.StateDir(name);
        var containerPid = File.ReadAllText(Path.Combine(state, "container.pid")).Trim();
        await ShAsync(hive, name, "setsid sleep 1000 >/dev/null 2>&1 < /dev/null &");

        // Controller killed and started again, then Sbxd killed: both re-adopt, nothing is started again.
        await hive.KillAsync();
        await hive.StartProcessAsync();
        var sbxd = File.ReadAllText(Path.Combine(state, "sbxd.pid")).Trim();
        await Host.RunAsync("kill", "-KILL", sbxd);
        string? Pid(string file)
        {
            try
            {
                return File.ReadAllText(Path.Combine(state, file)).Trim();
            }
            catch (IOException)
            {
                return null;
            }
        }

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && (Pid("sbxd.pid") is null || Pid("sbxd.pid") == sbxd || (await hive.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}")).Body.GetProperty("status").GetString() != "running"))
        {
            await Task.Delay(200);
        }

        var (status, detail) = await hive.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}");
        Assert.That(status, Is.EqualTo(200));
        Assert.That(Base(detail), Is.EqualTo(idBase), "the same range in the response");
        var inside = await ShAsync(hive, name, "cat /proc/self/uid_map; pgrep -c -x sleep");
        Assert.That(inside.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))), Is.EqualTo(new[] { $"0 {idBase} 65536", "1" }), "the same namespace, its processes still there");
        Assert.That(Pid("container.pid"), Is.EqualTo(containerPid), "the container was adopted, not started again");

        var leases = Path.Combine(hive.DataDir, "ids", "leases");
        Assert.That(Directory.GetFiles(leases).Count(f => !f.EndsWith(".lock", StringComparison.Ordinal)), Is.EqualTo(1));
        await hive.DestroyAsync(name);
        Assert.That(Directory.GetFiles(leases).Where(f => !f.EndsWith(".lock", StringComparison.Ordinal)), Is.Empty, "the lease is released");
        Assert.That(await Host.LeftoversAsync(name, state), Is.Empty);
    }

    [Test]
    public async Task With_userns_off_the_sandbox_runs_in_the_hosts_ids()
    {
        await using var hive = await ControllerProcess.StartAsync(extraArgs: ["--userns", "off"]);
        var name = Names.Unique("unsoff");
        var created = await hive.CreateAsync(new { name, fs = new[] { new { mount = "/workspace" } } });
        Assert.That(created.TryGetProperty("user_namespace", out _), Is.False, "no user namespace to show");
        var inside = await ShAsync(hive, name, "cat /proc/self/uid_map; echo x > /workspace/f && stat -c %u /workspace/f");
        Assert.That(inside.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))), Is.EqualTo(new[] { "0 0 4294967295", "0" }));
        await hive.DestroyAsync(name);
        Assert.That(await Host.LeftoversAsync(name, hive.StateDir(name)), Is.Empty);
    }
}
