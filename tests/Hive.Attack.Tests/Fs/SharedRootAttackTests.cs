namespace Hive.Attack.Tests.Fs;

/// <summary>
/// Getting a workspace served from somewhere else: a shared root inside another sandbox's root (so
/// that sandbox can swap a directory of it for a symlink to the host's /), and a root replaced on
/// the host between two SbxFuse starts.
/// </summary>
[TestFixture]
[CancelAfter(600_000)]
[Category(From.Inside)]
public sealed class SharedRootAttackTests
{
    [TestCase("inside", TestName = "A_root_inside_another_sandboxes_root_is_refused")]
    [TestCase("around", TestName = "A_root_around_another_sandboxes_root_is_refused")]
    [Defence("nested or overlapping workspace roots of different sandboxes are refused at create (409)")]
    public async Task Nested_roots_are_refused(string where)
    {
        var team = Path.Combine(FsSandboxes.Roots, "team-" + Guid.NewGuid().ToString("N")[..8]);
        var owner = Names.Unique("owner");
        var ownerRoot = where == "inside" ? team : Path.Combine(team, "inner");
        var attackerRoot = where == "inside" ? Path.Combine(team, "sub") : team;
        await FsSandboxes.Controller.CreateAsync(new { name = owner, fs = new[] { new { mount = "/s", root = ownerRoot } } });
        try
        {
            // The attack this prevents: the sandbox owning the outer root swaps the inner one for a symlink to /.
            var attacker = Names.Unique("attacker");
            var refused = await FsSandboxes.Controller.CreateAsync(new { name = attacker, fs = new[] { new { mount = "/s", root = attackerRoot } } }, expectStatus: 409);
            Assert.That(refused.GetProperty("error").GetString(), Does.Contain("overlaps the workspace root").And.Contain(owner));
            Assert.That((await FsSandboxes.Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{attacker}")).Status, Is.EqualTo(404), "nothing was created");

            // The same root is a shared workspace, as before.
            var sharer = Names.Unique("sharer");
            await FsSandboxes.Controller.CreateAsync(new { name = sharer, fs = new[] { new { mount = "/s", root = ownerRoot } } });
            await FsSandboxes.Controller.DestroyAsync(sharer);
        }
        finally
        {
            await FsSandboxes.Controller.DestroyAsync(owner);
        }
    }

    [TestCase("symlink", 40, TestName = "A_root_swapped_for_a_symlink_to_the_host_root_is_not_served")]
    [TestCase("directory", 116, TestName = "A_root_replaced_by_another_directory_is_not_served")]
    [Defence("Sbxd re-opens a root beneath the operator's directory without following links and serves it only if it is the directory recorded at create")]
    public async Task A_swapped_root_is_not_served_after_a_restart(string replacement, int errno)
    {
        var root = Path.Combine(FsSandboxes.Roots, "solo-" + Guid.NewGuid().ToString("N")[..8]);
        var name = Names.Unique("solo");
        await FsSandboxes.Controller.CreateAsync(new { name, fs = new[] { new { mount = "/s", root } } });
        try
        {
            var (exit, _, stderr) = await FsSandboxes.ShAsync(name, "echo mine > /s/marker");
            Assert.That(exit, Is.Zero, stderr);

            // Between two starts of its SbxFuse, the root's path is made to lead elsewhere.
            Directory.Move(root, root + ".orig");
            if (replacement == "symlink")
            {
                Directory.CreateSymbolicLink(root, "/");
            }
            else
            {
                Directory.CreateDirectory(root);
                await File.WriteAllTextAsync(Path.Combine(root, "planted"), "not the workspace");
            }

            var pidFile = Path.Combine(FsSandboxes.Controller.StateDir(name), "fs", "sbxfuse-0.pid");
            var pid = int.Parse(await File.ReadAllTextAsync(pidFile), System.Globalization.CultureInfo.InvariantCulture);
            using (var kill = System.Diagnostics.Process.Start("kill", ["-KILL", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            var refused = await FsSandboxes.DeniedAsync(name, "fs.mount", "/s", errno);
            Assert.That(refused, Is.Not.Null, "the refusal is recorded");
            Assert.That(refused!.Value.GetProperty("target").GetString(), Is.EqualTo(root));

            var (_, listing, _) = await FsSandboxes.ShAsync(name, "ls -A /s; cat /s/etc/hostname /s/planted; touch /s/x 2>&1");
            Assert.That(listing, Does.Not.Contain("etc").And.Not.Contain("proc").And.Not.Contain("not the workspace"), "neither the host's / nor the planted directory is served");
            Assert.That(listing, Does.Contain("Read-only file system"), "the mount point stays the empty read-only bind");
        }
        finally
        {
            if (Directory.Exists(root + ".orig"))
            {
                if (new FileInfo(root).LinkTarget is not null)
                {
                    File.Delete(root);
                }
                else if (Directory.Exists(root))
                {
                    Directory.Delete(root, recursive: true);
                }

                Directory.Move(root + ".orig", root);
            }

            await FsSandboxes.Controller.DestroyAsync(name);
        }

        Assert.That(File.ReadAllText(Path.Combine(root, "marker")), Is.EqualTo("mine\n"), "the workspace itself is untouched");
    }
}
