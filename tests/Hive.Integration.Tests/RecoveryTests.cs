using System.Net;

namespace Hive.Integration.Tests;

/// <summary>Crashes of the Controller or of one Sbxd lose nothing; expired sandboxes are reaped completely.</summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class RecoveryTests
{
    [Test]
    public async Task Controller_sigkill_and_restart_readopts_running_sandboxes()
    {
        await using var hive = await ControllerProcess.StartAsync();
        var name = Names.Unique("restart");
        await hive.CreateAsync(new { name });
        await hive.ExecAsync(name, "echo persisted > /root/note.txt; (setsid sleep 600 >/dev/null 2>&1 &)");
        var sbxdPid = File.ReadAllText(Path.Combine(hive.StateDir(name), "sbxd.pid")).Trim();

        await hive.KillAsync();
        Assert.That(Directory.Exists($"/proc/{sbxdPid}"), Is.True, "Sbxd must outlive the Controller");
        await hive.StartProcessAsync();

        var (status, list) = await hive.SendAsync(HttpMethod.Get, "/api/v1/hiveboxes");
        Assert.That(status, Is.EqualTo(200));
        Assert.That(list.GetProperty("sandboxes").EnumerateArray().Select(s => s.GetProperty("id").GetString()), Does.Contain(name));
        var note = await hive.Http.GetStringAsync($"/api/v1/hiveboxes/{name}/files?path=/root/note.txt");
        Assert.That(note, Is.EqualTo("persisted\n"));
        var ps = await hive.ExecAsync(name, "ps -eo comm | grep -c '^sleep$'");
        Assert.That(ps.GetProperty("stdout").GetString()!.Trim(), Is.EqualTo("1"), "processes started before the restart keep running");
        Assert.That(File.ReadAllText(Path.Combine(hive.StateDir(name), "sbxd.pid")).Trim(), Is.EqualTo(sbxdPid), "the same Sbxd is re-adopted");

        await hive.DestroyAsync(name);
        Assert.That(await Host.LeftoversAsync(name, hive.StateDir(name)), Is.Empty);
    }

    /// <summary>
    /// A host reboot, simulated: every process of the sandbox is killed at once (Controller, Sbxd,
    /// SbxFuse, container), and everything that lives in memory or /run is gone (mounts, network
    /// namespace, runc state). Only the data dir survives — as on a real disk.
    /// </summary>
    [Test]
    public async Task After_a_simulated_host_reboot_the_sandbox_and_its_workspace_come_back()
    {
        await using var hive = await ControllerProcess.StartAsync();
        var name = Names.Unique("reboot");
        await hive.CreateAsync(new { name, fs = new[] { new { mount = "/workspace" } } });
        await hive.ExecAsync(name, "echo kept > /workspace/w.txt && echo rootfs > /root/r.txt && sync");
        var state = hive.StateDir(name);
        var pids = new[] { Path.Combine(state, "sbxd.pid"), Path.Combine(state, "fs", "sbxfuse-0.pid"), Path.Combine(state, "container.pid") }
            .Select(f => File.ReadAllText(f).Trim()).ToList();

        await hive.KillAsync();
        await Host.RunAsync("kill", ["-KILL", .. pids]);
        await Host.RunAsync("runc", "delete", "--force", "hive-" + name);
        var workspaces = Path.Combine(hive.DataDir, "workspaces", name) + "/"; // workspace file systems are mounted there
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(state + "/", StringComparison.Ordinal) || m.StartsWith(workspaces, StringComparison.Ordinal)).Reverse().ToList();
        foreach (var mount in mounts)
        {
            await Host.RunAsync("umount", "-l", mount);
        }

        await Host.RunAsync("ip", "netns", "delete", "hive-" + name);
        Assert.That(File.ReadAllText("/proc/self/mountinfo"), Does.Not.Contain(state + "/").And.Not.Contain(workspaces), "nothing of the sandbox is mounted any more");

        await hive.StartProcessAsync();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string? files = null;
        while (DateTime.UtcNow < deadline)
        {
            var (status, body) = await hive.SendAsync(HttpMethod.Post, $"/api/v1/hiveboxes/{name}/exec", """{"command": "cat /workspace/w.txt /root/r.txt"}""");
            if (status == 200 && body.GetProperty("exit_code").GetInt32() == 0)
            {
                files = body.GetProperty("stdout").GetString();
                break;
            }

            await Task.Delay(500);
        }

        Assert.That(files, Is.EqualTo("kept\nrootfs\n"), "the workspace and the container's own files are back");
        var write = await hive.ExecAsync(name, "echo more >> /workspace/w.txt && cat /workspace/w.txt");
        Assert.That(write.GetProperty("stdout").GetString(), Is.EqualTo("kept\nmore\n"));
        await hive.DestroyAsync(name);
        Assert.That(await Host.LeftoversAsync(name, state), Is.Empty);
    }

    [Test]
    public async Task Killed_sbxd_is_restarted_and_readopts_the_container()
    {
        await using var hive = await ControllerProcess.StartAsync();
        var name = Names.Unique("sbxd");
        await hive.CreateAsync(new { name });
        await hive.ExecAsync(name, "echo still-here > /root/keep.txt");
        var pidFile = Path.Combine(hive.StateDir(name), "sbxd.pid");
        var oldPid = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);

        var (code, _, _) = await Host.RunAsync("kill", "-KILL", oldPid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(code, Is.Zero);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Directory.Exists($"/proc/{oldPid}") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        // Files go through Sbxd: the next call notices it is gone, restarts it, and works — files intact.
        var note = await hive.Http.GetStringAsync($"/api/v1/hiveboxes/{name}/files?path=/root/keep.txt");
        Assert.That(note, Is.EqualTo("still-here\n"));
        var newPid = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(newPid, Is.Not.EqualTo(oldPid));
        var (_, detail) = await hive.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}");
        Assert.That(detail.GetProperty("status").GetString(), Is.EqualTo("running"));
        var exec = await hive.ExecAsync(name, "cat /root/keep.txt");
        Assert.That(exec.GetProperty("stdout").GetString(), Is.EqualTo("still-here\n"));

        await hive.DestroyAsync(name);
        Assert.That(await Host.LeftoversAsync(name, hive.StateDir(name)), Is.Empty);
    }

    [Test]
    public async Task Supervisor_restarts_a_killed_sbxd_without_any_request()
    {
        await using var hive = await ControllerProcess.StartAsync(null, null, "--reaper-interval", "1");
        var name = Names.Unique("watch");
        await hive.CreateAsync(new { name });
        var pidFile = Path.Combine(hive.StateDir(name), "sbxd.pid");
        var oldPid = File.ReadAllText(pidFile).Trim();
        await Host.RunAsync("kill", "-KILL", oldPid);

        var deadline = DateTime.UtcNow.AddSeconds(60);
        string current = oldPid;
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(500);
            current = File.Exists(pidFile) ? File.ReadAllText(pidFile).Trim() : current;
            if (current != oldPid && Directory.Exists($"/proc/{current}"))
            {
                break;
            }
        }

        Assert.That(current, Is.Not.EqualTo(oldPid), "the health check must restart Sbxd on its own\n" + hive.Log);
        await hive.DestroyAsync(name);
    }

    [Test]
    public async Task Expired_sandboxes_are_reaped_completely()
    {
        await using var hive = await ControllerProcess.StartAsync(null, null, "--reaper-interval", "1");
        var name = Names.Unique("ttl");
        await hive.CreateAsync(new { name, timeout = 2 });
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var status = 200;
        while (status != 404 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(500);
            using var response = await hive.Http.GetAsync($"/api/v1/hiveboxes/{name}");
            status = (int)response.StatusCode;
        }

        Assert.That(status, Is.EqualTo((int)HttpStatusCode.NotFound), "the sandbox must be destroyed after its timeout\n" + hive.Log);
        Assert.That(await Host.LeftoversAsync(name, hive.StateDir(name)), Is.Empty);
    }

    [Test]
    public async Task A_crashed_agent_is_restarted_on_the_same_files()
    {
        await using var hive = await ControllerProcess.StartAsync();
        var name = Names.Unique("crash");
        await hive.CreateAsync(new { name });
        await hive.ExecAsync(name, "echo survives > /root/data.txt");
        var (_, state, _) = await Host.RunAsync("runc", "state", $"hive-{name}");
        var oldPid = System.Text.Json.JsonDocument.Parse(state).RootElement.GetProperty("pid").GetInt32();

        await Host.RunAsync("kill", "-KILL", oldPid.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // Sbxd notices within a second or two and starts the container again on the same rootfs.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string? content = null;
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(500);
            using var response = await hive.Http.PostAsync($"/api/v1/hiveboxes/{name}/exec", new StringContent("""{"command": "cat /root/data.txt"}""", System.Text.Encoding.UTF8, "application/json"));
            if (response.IsSuccessStatusCode)
            {
                var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                if (body.GetProperty("exit_code").GetInt32() == 0)
                {
                    content = body.GetProperty("stdout").GetString();
                    break;
                }
            }
        }

        Assert.That(content, Is.EqualTo("survives\n"), "the sandbox must come back with its files\n" + hive.Log);
        var (_, newState, _) = await Host.RunAsync("runc", "state", $"hive-{name}");
        Assert.That(System.Text.Json.JsonDocument.Parse(newState).RootElement.GetProperty("pid").GetInt32(), Is.Not.EqualTo(oldPid));
        var (_, detail) = await hive.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}");
        Assert.That(detail.GetProperty("status").GetString(), Is.EqualTo("running"));

        await hive.DestroyAsync(name);
        Assert.That(await Host.LeftoversAsync(name, hive.StateDir(name)), Is.Empty);
    }

    [Test]
    public async Task Destroy_during_a_watchdog_restart_leaves_nothing()
    {
        await using var hive = await ControllerProcess.StartAsync();
        var name = Names.Unique("race");
        await hive.CreateAsync(new { name, fs = new[] { new { mount = "/workspace" } } });
        var (_, state, _) = await Host.RunAsync("runc", "state", $"hive-{name}");
        var pid = System.Text.Json.JsonDocument.Parse(state).RootElement.GetProperty("pid").GetInt32();

        // The watchdog notices within a second and starts restarting; destroy races with it.
        await Host.RunAsync("kill", "-KILL", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Task.Delay(1100);
        await hive.DestroyAsync(name);
        await Task.Delay(2000); // a restart that escaped the destroy would show up by now

        Assert.That(await Host.LeftoversAsync(name, hive.StateDir(name)), Is.Empty);
    }
}
