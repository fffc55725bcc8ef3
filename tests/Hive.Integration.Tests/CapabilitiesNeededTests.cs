using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>
/// Each capability a sandbox's root keeps is needed: an everyday tool works with the sandbox's set
/// and breaks without that one capability. Both runs are the same command in the same running
/// sandbox — same namespaces, cgroup, seccomp filter and no_new_privileges — started with
/// <c>runc exec</c> from the host with a process spec that differs only in the capability sets.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
public sealed class CapabilitiesNeededTests : SharedControllerFixture
{
    private static readonly string[] Kept = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_KILL"];

    private const string Deb = "/tmp/hive-demo_1.0_all.deb";
    private string _name = null!;

    [OneTimeSetUp]
    public async Task CreateSandboxAsync()
    {
        _name = Names.Unique("caps");
        await Controller.CreateAsync(new { name = _name });
        await UploadAsync(Deb, await LocalPackages.DebAsync());
        await UploadAsync("/tmp/owned.tar", LocalPackages.TarOwnedBy("owned.txt", 1000));
        var setup = await Controller.ExecAsync(_name, "useradd -m dev && chmod 700 /home/dev && runuser -u dev -- sh -c 'echo private > /home/dev/notes.txt'", timeout: 60);
        Assert.That(setup.GetProperty("exit_code").GetInt32(), Is.Zero, setup.ToString());
    }

    [OneTimeTearDown]
    public async Task DestroySandboxAsync()
    {
        if (_name is not null)
        {
            await Controller.DestroyAsync(_name);
        }
    }

    [Test]
    public async Task The_sandbox_holds_exactly_the_kept_set()
    {
        var status = await Controller.ExecAsync(_name, "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status");
        Assert.That(status.GetProperty("stdout").GetString(), Is.EqualTo("CapPrm:\t00000000000000eb\nCapEff:\t00000000000000eb\nCapBnd:\t00000000000000eb\n"));
        var (exit, output) = await RunAsync(null, "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status");
        Assert.That((exit, output), Is.EqualTo((0, "CapPrm:\t00000000000000eb\nCapEff:\t00000000000000eb\nCapBnd:\t00000000000000eb\n")), "runc exec with the kept set is the sandbox's own set");
    }

    [TestCase("CAP_CHOWN", "cd $(mktemp -d) && tar -xpf /tmp/owned.tar && stat -c '%u:%g %a' owned.txt", "Cannot change ownership to uid 1000, gid 1000: Operation not permitted", TestName = "tar restoring an archive's owners needs CAP_CHOWN")]
    [TestCase("CAP_FOWNER", "cd $(mktemp -d) && tar -xpf /tmp/owned.tar && stat -c '%u:%g %a' owned.txt", "Cannot change mode to rw-r-----: Operation not permitted", TestName = "tar restoring the modes of another user's files needs CAP_FOWNER")]
    [TestCase("CAP_DAC_OVERRIDE", "echo 'export EDITOR=vi' >> /home/dev/.profile && cat /home/dev/notes.txt", "Permission denied", TestName = "root editing a file in a user's home needs CAP_DAC_OVERRIDE")]
    [TestCase("CAP_SETUID", "runuser -u nobody -- id -un", "runuser: cannot set user id: Operation not permitted", TestName = "runuser needs CAP_SETUID")]
    [TestCase("CAP_SETGID", "runuser -u nobody -- id -un", "runuser: cannot set groups: Operation not permitted", TestName = "runuser needs CAP_SETGID")]
    [TestCase("CAP_KILL", "setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 120 </dev/null >/dev/null 2>&1 & echo $! > /tmp/victim.pid; sleep 0.5; kill $(cat /tmp/victim.pid)", "Operation not permitted", TestName = "root stopping a process of another user needs CAP_KILL")]
    public async Task Without_the_capability_an_everyday_tool_breaks(string capability, string command, string error)
    {
        try
        {
            var (exit, output) = await RunAsync(null, command);
            Assert.That(exit, Is.Zero, "with the sandbox's set: " + output);
            (exit, output) = await RunAsync(capability, command);
            Assert.That(exit, Is.Not.Zero, $"without {capability}: {output}");
            Assert.That(output, Does.Contain(error), $"without {capability}");
        }
        finally
        {
            // The process the CAP_KILL case could not stop (the agent can: it holds CAP_KILL).
            await Controller.ExecAsync(_name, "test -f /tmp/victim.pid && kill -9 $(cat /tmp/victim.pid); rm -f /tmp/victim.pid; true", timeout: 30);
        }
    }

    [TestCase("CAP_CHOWN", "dpkg: error processing package hive-demo (--configure)")]
    [TestCase("CAP_FOWNER", "dpkg: error processing package hive-demo (--configure)")]
    [TestCase("CAP_SETUID", "Operation not permitted")]
    [TestCase("CAP_SETGID", "setgroups 65534 failed")]
    public async Task Apt_installing_a_local_package_needs_the_capability(string capability, string error)
    {
        // The package's postinst adds a system user and hands it a directory (useradd, chown, chmod);
        // apt itself runs its download methods as _apt.
        const string Install = $"apt-get install -y {Deb} 2>&1; echo exit=$?";
        const string Remove = "dpkg --purge hive-demo >/dev/null 2>&1; userdel hivedemo 2>/dev/null; true";
        await RunAsync(null, Remove);
        var (_, output) = await RunAsync(null, Install);
        Assert.That(output, Does.EndWith("exit=0\n"), "with the sandbox's set: " + output);
        await RunAsync(null, Remove);
        (_, output) = await RunAsync(capability, Install);
        Assert.That(output, Does.Not.EndWith("exit=0\n"), $"without {capability}: {output}");
        Assert.That(output, Does.Contain(error), $"without {capability}");
        await RunAsync(null, Remove);
    }

    /// <summary>
    /// Runs <paramref name="command"/> in the sandbox with <c>runc exec</c>: as root, no_new_privileges,
    /// the sandbox's capability set without <paramref name="drop"/> (null: the whole set). Output is stdout and stderr together.
    /// </summary>
    private async Task<(int Exit, string Output)> RunAsync(string? drop, string command)
    {
        var caps = Kept.Where(c => c != drop).ToArray();
        var process = new
        {
            terminal = false,
            user = new { uid = 0, gid = 0 },
            args = new[] { "/bin/sh", "-c", "exec 2>&1; " + command },
            env = new[] { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive" },
            cwd = "/",
            noNewPrivileges = true,
            capabilities = new { bounding = caps, effective = caps, permitted = caps },
        };
        var spec = Path.Combine(Path.GetTempPath(), $"hive-caps-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(spec, JsonSerializer.Serialize(process));
        try
        {
            var (exit, stdout, _) = await Host.RunWithEnvAsync("runc", ["exec", "--process", spec, "hive-" + _name], "/", TimeSpan.FromMinutes(5), []);
            return (exit, stdout);
        }
        finally
        {
            File.Delete(spec);
        }
    }

    private async Task UploadAsync(string path, byte[] content)
    {
        using var body = new ByteArrayContent(content);
        using var put = await Controller.Http.PutAsync($"/api/v1/hiveboxes/{_name}/files?path={path}", body);
        Assert.That(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
    }
}
