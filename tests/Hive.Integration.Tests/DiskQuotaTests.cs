using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>
/// <c>disk</c> and workspace <c>quota</c> through the API: defaults from the operator, shown in every
/// response, validated, reported as usage, kept across an Sbxd restart and a re-create, and gone
/// without a trace (but the workspace's image) on destroy.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
public sealed class DiskQuotaTests
{
    private ControllerProcess _hive = null!;

    [OneTimeSetUp]
    public async Task StartAsync() =>
        _hive = await ControllerProcess.StartAsync(null, null, "--default-disk", "48m", "--default-workspace-quota", "40m", "--usage-interval", "0.5", "--analytics-interval", "0.5");

    [OneTimeTearDown]
    public async Task StopAsync() => await _hive.DisposeAsync();

    private static long Bytes(string size) => long.Parse(size[..^1], CultureInfo.InvariantCulture) << 20;

    /// <summary>A local workspace's directory on the host (the Controller keys it by the mount's hash).</summary>
    private string Backing(string sandbox, string mount) =>
        Path.Combine(_hive.DataDir, "workspaces", sandbox, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(mount)))[..16]);

    private async Task<(int Exit, string Stdout, string Stderr)> ShAsync(string sandbox, string command)
    {
        var result = await _hive.ExecAsync(sandbox, command, timeout: 120);
        return (result.GetProperty("exit_code").GetInt32(), result.GetProperty("stdout").GetString()!, result.GetProperty("stderr").GetString()!);
    }

    [Test]
    public async Task Disk_and_quota_default_from_the_operator_and_show_in_every_response()
    {
        var name = Names.Unique("dq");
        var created = await _hive.CreateAsync(new { name, fs = new[] { new { mount = "/workspace" } } });
        try
        {
            Assert.That(created.GetProperty("limits").GetProperty("disk").GetString(), Is.EqualTo("48m"));
            Assert.That(created.GetProperty("limits").GetProperty("disk_inodes").GetInt64(), Is.EqualTo(3072), "64 Ki inodes per GiB");
            var fs = created.GetProperty("fs")[0];
            Assert.That((fs.GetProperty("quota").GetString(), fs.GetProperty("quota_inodes").GetInt64()), Is.EqualTo(("40m", 2560L)));

            var (_, list) = await _hive.SendAsync(HttpMethod.Get, "/api/v1/hiveboxes");
            Assert.That(list.GetProperty("sandboxes").EnumerateArray().Single(s => s.GetProperty("id").GetString() == name).GetProperty("disk").GetString(), Is.EqualTo("48m"));
            var (_, detail) = await _hive.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}");
            Assert.That(detail.GetProperty("limits").GetProperty("disk").GetString(), Is.EqualTo("48m"));

            // Inside, df shows the sandbox's own file systems.
            var (_, df, _) = await ShAsync(name, "df -B1 --output=size,itotal / /workspace | tail -2");
            var rows = df.Trim().Split('\n').Select(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
            Assert.That(rows[0][0], Is.InRange(Bytes("48m") * 8 / 10, Bytes("48m")), df);
            Assert.That(rows[0][1], Is.EqualTo(3072), df);
            Assert.That(rows[1][0], Is.InRange(Bytes("40m") * 8 / 10, Bytes("40m")), df);
            Assert.That(rows[1][1], Is.EqualTo(2560), df);

            // Get-or-create: the same disk (or none given) is the same sandbox; another is a conflict.
            var (same, _) = await _hive.SendAsync(HttpMethod.Put, $"/api/v1/hiveboxes/{name}", """{"disk": "48m", "fs": [{"mount": "/workspace"}]}""");
            Assert.That(same, Is.EqualTo(200));
            var (other, body) = await _hive.SendAsync(HttpMethod.Put, $"/api/v1/hiveboxes/{name}", """{"disk": "64m"}""");
            Assert.That(other, Is.EqualTo(409));
            Assert.That(body.GetProperty("error").GetString(), Does.Contain("disk is 48m, requested 64m"));
        }
        finally
        {
            await _hive.DestroyAsync(name);
        }

        var sized = Names.Unique("dq");
        var big = await _hive.CreateAsync(new { name = sized, disk = "96m" });
        Assert.That((big.GetProperty("limits").GetProperty("disk").GetString(), big.GetProperty("limits").GetProperty("disk_inodes").GetInt64()), Is.EqualTo(("96m", 6144L)));
        await _hive.DestroyAsync(sized);
    }

    [TestCase("""{"disk": "10x"}""", "invalid disk")]
    [TestCase("""{"disk": "1m"}""", "disk must be between 32m and")]
    [TestCase("""{"disk": "4096t"}""", "disk must be between 32m and")]
    [TestCase("""{"disk": true}""", "invalid disk")]
    [TestCase("""{"fs": [{"mount": "/w", "quota": "1k"}]}""", "fs[0].quota must be between 32m and")]
    [TestCase("""{"fs": [{"mount": "/w", "quota": "lots"}]}""", "invalid fs[0].quota")]
    [TestCase("""{"fs": [{"mount": "/w", "root": "/srv/shared/x", "quota": "1g"}]}""", "has no quota")]
    public async Task Bad_disk_or_quota_is_refused_with_a_clear_error(string request, string message)
    {
        var (status, body) = await _hive.SendAsync(HttpMethod.Post, "/api/v1/hiveboxes", request);
        Assert.That(status, Is.EqualTo(400), body.ToString());
        Assert.That(body.GetProperty("error").GetString(), Does.Contain(message));
    }

    [Test]
    public async Task A_quota_cannot_change_on_a_live_sandbox()
    {
        var name = Names.Unique("dq");
        await _hive.CreateAsync(new { name, fs = new[] { new { mount = "/w" } } });
        try
        {
            var (status, body) = await _hive.SendAsync(HttpMethod.Patch, $"/api/v1/hiveboxes/{name}", """{"fs": [{"mount": "/w", "quota": "1g", "acls": [{"path": "/w/**", "access": "rw"}]}]}""");
            Assert.That(status, Is.EqualTo(400), body.ToString());
            Assert.That(body.GetProperty("error").GetString(), Does.Contain("cannot change on a live sandbox"));
        }
        finally
        {
            await _hive.DestroyAsync(name);
        }
    }

    [Test]
    public async Task Usage_is_reported_in_the_response_analytics_and_resource_usage_events()
    {
        var name = Names.Unique("dq");
        await _hive.CreateAsync(new { name, fs = new[] { new { mount = "/w" } } });
        try
        {
            var (exit, _, stderr) = await ShAsync(name, "head -c 8388608 /dev/urandom > /root/eight && head -c 4194304 /dev/urandom > /w/four && mkdir /root/d && touch /root/d/1 /root/d/2 /root/d/3 && sync");
            Assert.That(exit, Is.Zero, stderr);

            var (_, detail) = await _hive.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}");
            var usage = detail.GetProperty("usage");
            Assert.That(usage.GetProperty("disk_used_bytes").GetInt64(), Is.InRange(8L << 20, 48L << 20), usage.ToString());
            Assert.That(usage.GetProperty("disk_used_inodes").GetInt64(), Is.GreaterThanOrEqualTo(4), usage.ToString());
            var workspace = usage.GetProperty("workspaces")[0];
            Assert.That(workspace.GetProperty("mount").GetString(), Is.EqualTo("/w"));
            Assert.That(workspace.GetProperty("used_bytes").GetInt64(), Is.InRange(4L << 20, 40L << 20));
            Assert.That((workspace.GetProperty("quota_bytes").GetInt64(), workspace.GetProperty("quota_inodes").GetInt64()), Is.EqualTo((40L << 20, 2560L)));

            JsonElement? sampled = null;
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (sampled is null && DateTime.UtcNow < deadline)
            {
                var (_, analytics) = await _hive.SendAsync(HttpMethod.Get, "/api/v1/analytics?range=300");
                sampled = analytics.GetProperty("samples").EnumerateArray().SelectMany(s => s.GetProperty("sandboxes").EnumerateArray())
                    .Where(s => s.GetProperty("id").GetString() == name && s.TryGetProperty("disk_usage", out var d) && d.GetInt64() >= 8L << 20)
                    .Select(s => (JsonElement?)s).LastOrDefault();
                await Task.Delay(250);
            }

            Assert.That(sampled, Is.Not.Null, "a sample with the disk in use");
            Assert.That(sampled!.Value.GetProperty("disk_limit").GetInt64(), Is.EqualTo(48L << 20));
            Assert.That(sampled.Value.GetProperty("disk_inodes_limit").GetInt64(), Is.EqualTo(3072));
            Assert.That(sampled.Value.GetProperty("workspaces")[0].GetProperty("disk_usage").GetInt64(), Is.GreaterThanOrEqualTo(4L << 20));

            var events = await _hive.WaitForEventsAsync(name, all => all.Any(e => e.GetProperty("disk_bytes").GetInt64() >= 8L << 20), kind: "resource.usage");
            var usageEvent = events.Last(e => e.GetProperty("disk_bytes").GetInt64() >= 8L << 20);
            Assert.That(usageEvent.GetProperty("disk_limit_bytes").GetInt64(), Is.EqualTo(48L << 20));
            Assert.That(usageEvent.GetProperty("disk_limit_inodes").GetInt64(), Is.EqualTo(3072));
            Assert.That(usageEvent.GetProperty("workspaces")[0].GetProperty("disk_bytes").GetInt64(), Is.GreaterThanOrEqualTo(4L << 20));
        }
        finally
        {
            await _hive.DestroyAsync(name);
        }
    }

    [Test]
    public async Task Sbxd_kill_and_restart_keeps_the_disk_and_its_limit()
    {
        var name = Names.Unique("dq");
        await _hive.CreateAsync(new { name });
        try
        {
            await ShAsync(name, "echo before > /root/before");
            var image = Path.Combine(_hive.StateDir(name), "disk.img");
            var device = await AttachedDeviceAsync(image);
            var pidFile = Path.Combine(_hive.StateDir(name), "sbxd.pid");
            var oldPid = File.ReadAllText(pidFile).Trim();
            await Host.RunAsync("kill", "-KILL", oldPid);

            // The supervisor starts Sbxd again; it adopts the mounted disk (same loop device), not a new one.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline && (!File.Exists(pidFile) || File.ReadAllText(pidFile).Trim() == oldPid || !File.ReadAllText(Path.Combine(_hive.StateDir(name), "sbxd.log")).Contains("adopted its mounted disk", StringComparison.Ordinal)))
            {
                await Task.Delay(100);
            }

            Assert.That(File.ReadAllText(Path.Combine(_hive.StateDir(name), "sbxd.log")), Does.Contain("adopted its mounted disk"));
            Assert.That(await AttachedDeviceAsync(image), Is.EqualTo(device), "the same loop device, the same file system");
            var (_, before, _) = await ShAsync(name, "cat /root/before");
            Assert.That(before, Is.EqualTo("before\n"));
            var (_, _, stderr) = await ShAsync(name, "dd if=/dev/zero of=/root/fill bs=1M count=64");
            Assert.That(stderr, Does.Contain("No space left on device"), "the limit holds after the restart");
            var (exit, _, _) = await ShAsync(name, "rm /root/fill && echo ok > /root/after");
            Assert.That(exit, Is.Zero);
        }
        finally
        {
            await _hive.DestroyAsync(name);
        }

        Assert.That(await Host.LeftoversAsync(name, _hive.StateDir(name)), Is.Empty);
    }

    [Test]
    public async Task Destroy_leaves_no_loop_device_mount_or_image_but_the_workspace_image()
    {
        var name = Names.Unique("dq");
        await _hive.CreateAsync(new { name, fs = new[] { new { mount = "/w" } } });
        var stateImage = Path.Combine(_hive.StateDir(name), "disk.img");
        var workspaceImage = Backing(name, "/w") + ".img";
        Assert.That(await AttachedDeviceAsync(stateImage), Is.Not.Null);
        Assert.That(await AttachedDeviceAsync(workspaceImage), Is.Not.Null);
        await ShAsync(name, "echo kept > /w/kept");

        await _hive.DestroyAsync(name);

        Assert.That(await Host.LeftoversAsync(name, _hive.StateDir(name)), Is.Empty);
        Assert.That(await AttachedDeviceAsync(stateImage), Is.Null);
        Assert.That(await AttachedDeviceAsync(workspaceImage), Is.Null);
        Assert.That(File.Exists(stateImage), Is.False, "the writable layer went with the sandbox");
        Assert.That(File.Exists(workspaceImage), Is.True, "the workspace stays");
        Assert.That(Directory.EnumerateFileSystemEntries(Backing(name, "/w")), Is.Empty, "its directory is a bare mount point again");
        File.Delete(workspaceImage);
    }

    [Test]
    public async Task A_workspace_keeps_its_files_and_size_across_recreate_and_can_grow_but_not_shrink()
    {
        var name = Names.Unique("dq");
        await _hive.CreateAsync(new { name, fs = new[] { new { mount = "/w", quota = "40m" } } });
        await ShAsync(name, "echo remembered > /w/memory.txt");
        await _hive.DestroyAsync(name);

        // Without a quota it keeps the size it has (not the operator's default).
        var again = await _hive.CreateAsync(new { name, fs = new[] { new { mount = "/w" } } });
        Assert.That(again.GetProperty("fs")[0].GetProperty("quota").GetString(), Is.EqualTo("40m"));
        Assert.That((await ShAsync(name, "cat /w/memory.txt")).Stdout, Is.EqualTo("remembered\n"));
        await _hive.DestroyAsync(name);

        var (shrink, body) = await _hive.SendAsync(HttpMethod.Post, "/api/v1/hiveboxes", JsonSerializer.Serialize(new { name, fs = new[] { new { mount = "/w", quota = "32m" } } }));
        Assert.That(shrink, Is.EqualTo(409), body.ToString());
        Assert.That(body.GetProperty("error").GetString(), Does.Contain("can grow, not shrink"));

        var grown = await _hive.CreateAsync(new { name, fs = new[] { new { mount = "/w", quota = "96m" } } });
        try
        {
            Assert.That(grown.GetProperty("fs")[0].GetProperty("quota").GetString(), Is.EqualTo("96m"));
            var (_, df, _) = await ShAsync(name, "cat /w/memory.txt; df -B1 --output=size /w | tail -1");
            var lines = df.Split('\n');
            Assert.That(lines[0], Is.EqualTo("remembered"));
            Assert.That(long.Parse(lines[1].Trim(), CultureInfo.InvariantCulture), Is.GreaterThan(64L << 20), "the file system grew");
        }
        finally
        {
            await _hive.DestroyAsync(name);
            File.Delete(Backing(name, "/w") + ".img");
        }
    }

    [Test]
    public async Task A_plain_workspace_from_before_quotas_keeps_working_without_one()
    {
        var name = Names.Unique("dq");
        var directory = Backing(name, "/w");
        Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(Path.Combine(directory, "old.txt"), "from before\n");

        var (status, body) = await _hive.SendAsync(HttpMethod.Post, "/api/v1/hiveboxes", JsonSerializer.Serialize(new { name, fs = new[] { new { mount = "/w", quota = "1g" } } }));
        Assert.That(status, Is.EqualTo(409), body.ToString());
        Assert.That(body.GetProperty("error").GetString(), Does.Contain("plain directory made before workspace quotas"));

        var created = await _hive.CreateAsync(new { name, fs = new[] { new { mount = "/w" } } });
        try
        {
            Assert.That(created.GetProperty("fs")[0].TryGetProperty("quota", out _), Is.False, "no quota shown");
            Assert.That((await ShAsync(name, "cat /w/old.txt")).Stdout, Is.EqualTo("from before\n"));
            Assert.That(File.Exists(directory + ".img"), Is.False, "no image made over its files");
        }
        finally
        {
            await _hive.DestroyAsync(name);
        }
    }

    /// <summary>The loop device whose backing file is <paramref name="image"/>, or null.</summary>
    private static async Task<string?> AttachedDeviceAsync(string image)
    {
        var (_, stdout, _) = await Host.RunAsync("losetup", "-j", image);
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return line?.Split(':')[0];
    }
}
