using System.Diagnostics;

namespace Hive.Interop.Tests;

/// <summary>
/// Idmapped mounts as Sbxd uses them for a sandbox's image: a detached clone of a directory, shown
/// through a user namespace's mapping, while the directory itself stays as it is.
/// </summary>
[CancelAfter(60_000)]
public sealed class IdmappedMountTests
{
    private const uint Base = 0x7100_0000;

    private Process _holder = null!;
    private string _root = null!;

    [SetUp]
    public async Task SetUpAsync()
    {
        // A process in a new user namespace (and network namespace, owned by it) with the map "0 Base 65536".
        _holder = Process.Start(new ProcessStartInfo("unshare", ["--user", "--net", "--", "/bin/sh", "-c", "echo ready; read _"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        Assert.That(await _holder.StandardOutput.ReadLineAsync(), Is.EqualTo("ready"));
        foreach (var map in new[] { "uid_map", "gid_map" })
        {
            await File.WriteAllTextAsync($"/proc/{_holder.Id}/{map}", $"0 {Base} 65536\n");
        }

        _root = Directory.CreateTempSubdirectory("hive-idmap-").FullName;
        File.WriteAllText(Path.Combine(_root, "by-root"), "r");
        File.WriteAllText(Path.Combine(_root, "by-user"), "u");
        Libc.fchownat(Libc.AT_FDCWD, Path.Combine(_root, "by-user"), 1000, 1001, Libc.AT_SYMLINK_NOFOLLOW);
        File.WriteAllText(Path.Combine(_root, "unmapped"), "x");
        Libc.fchownat(Libc.AT_FDCWD, Path.Combine(_root, "unmapped"), 70000, 70000, Libc.AT_SYMLINK_NOFOLLOW);
    }

    [TearDown]
    public void TearDown()
    {
        _holder.StandardInput.Close();
        _holder.WaitForExit(5000);
        _holder.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Test]
    public void A_clone_shows_owners_through_the_namespace_and_leaves_the_tree_alone()
    {
        using var userns = Libc.OpenNamespace($"/proc/{_holder.Id}/ns/user");
        using var tree = Libc.OpenIdmappedTree(_root, userns);
        var view = Libc.ProcFdPath(tree);
        Assert.Multiple(() =>
        {
            Assert.That(Owner(Path.Combine(view, "by-root")), Is.EqualTo((Base, Base)));
            Assert.That(Owner(Path.Combine(view, "by-user")), Is.EqualTo((Base + 1000, Base + 1001)));
            Assert.That(Owner(Path.Combine(view, "unmapped")).Uid, Is.EqualTo(65534u), "an owner beyond the range has no id: overflow");
            Assert.That(Owner(Path.Combine(_root, "by-user")), Is.EqualTo((1000u, 1001u)), "the tree itself is unchanged");
            Assert.That(File.ReadAllText(Path.Combine(view, "by-user")), Is.EqualTo("u"));
            Assert.That(File.ReadAllText("/proc/self/mountinfo"), Does.Not.Contain(_root), "detached: attached to no path");
        });
    }

    [Test]
    public void The_owner_of_a_network_namespace_is_the_user_namespace_it_was_made_in()
    {
        using var userns = Libc.OpenNamespace($"/proc/{_holder.Id}/ns/user");
        using var netns = Libc.OpenNamespace($"/proc/{_holder.Id}/ns/net");
        using var hostNet = Libc.OpenNamespace("/proc/self/ns/net");
        Assert.That(Libc.TryIdentity(userns, out var device, out var inode), Is.True);
        Assert.That(Libc.TryOwningUserNamespace(netns, out var ownerDevice, out var ownerInode), Is.True);
        Assert.That((ownerDevice, ownerInode), Is.EqualTo((device, inode)));
        Assert.That(Libc.TryOwningUserNamespace(hostNet, out _, out var hostOwner) && hostOwner != inode, Is.True, "the host's network namespace is the host's");
    }

    [Test]
    public void A_tree_cannot_be_idmapped_through_something_that_is_not_a_user_namespace()
    {
        using var netns = Libc.OpenNamespace($"/proc/{_holder.Id}/ns/net");
        var error = Assert.Throws<SyscallException>(() => Libc.OpenIdmappedTree(_root, netns).Dispose());
        Assert.That(error!.Syscall, Does.StartWith("mount_setattr"));
    }

    private static (uint Uid, uint Gid) Owner(string path) =>
        Libc.TryOwner(path, out var uid, out var gid) ? (uid, gid) : throw new IOException("stat " + path);
}
