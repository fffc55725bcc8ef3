namespace Hive.SbxFuse.Tests;

/// <summary>
/// A workspace of a sandbox in a user namespace (<c>--id-map BASE:65536</c>): the kernel names
/// callers and owners by host id (BASE + u); the backing directory keeps the sandbox's own ids u,
/// so the same files mean the same users to a sandbox re-created later with another range.
/// </summary>
[CancelAfter(120_000)]
public sealed class IdMapTests
{
    // Two ranges as two lives of one sandbox would get them (plain numbers here: no namespace needed).
    private const uint RangeA = 0x7000_0000;
    private const uint RangeB = RangeA + 65536;

    private static string[] Map(uint rangeBase) => ["--id-map", $"{rangeBase}:65536"];

    /// <summary>Runs a Python script as host uid/gid <paramref name="uid"/> (groups as given); one "name=result" line per attempt.</summary>
    private static Task<Dictionary<string, string>> AsAsync(uint uid, string script, params uint[] groups) => AsUser.RunAsync(uid, script, groups);

    private static async Task<string> OwnerAsync(string path)
    {
        var (code, owner) = await GovernedMountTests.RunAsync("stat", "-c", "%u:%g", path);
        Assert.That(code, Is.Zero, owner);
        return owner.Trim();
    }

    [Test]
    public async Task Callers_act_as_their_sandbox_id_and_the_backing_directory_stores_it()
    {
        await using var fs = await SbxFuseProcess.StartAsync(extraArgs: Map(RangeA));
        File.SetUnixFileMode(fs.Root, (UnixFileMode)0b111_101_101); // so the callers below reach the mount point
        Directory.CreateDirectory(fs.M("shared"));
        File.SetUnixFileMode(fs.M("shared"), (UnixFileMode)0b111_111_111);
        File.WriteAllText(fs.M("rootfile"), "r");
        File.WriteAllText(fs.M("private"), "p");
        await GovernedMountTests.RunAsync("chown", $"{RangeA + 1000}:{RangeA + 1000}", fs.M("private"));
        File.SetUnixFileMode(fs.M("private"), (UnixFileMode)0b110_000_000);
        File.WriteAllText(fs.M("staff"), "group");
        await GovernedMountTests.RunAsync("chgrp", $"{RangeA + 50}", fs.M("staff"));
        File.SetUnixFileMode(fs.M("staff"), (UnixFileMode)0b110_100_000);

        await Assert.MultipleAsync(async () =>
        {
            // The host's root (outside every range) makes files as the sandbox's root: stored 0, shown as the range's root.
            Assert.That(await OwnerAsync(Path.Combine(fs.Source, "rootfile")), Is.EqualTo("0:0"));
            Assert.That(await OwnerAsync(fs.M("rootfile")), Is.EqualTo($"{RangeA}:{RangeA}"));

            // A chown names host ids; the sandbox's ids are stored.
            Assert.That(await OwnerAsync(Path.Combine(fs.Source, "private")), Is.EqualTo("1000:1000"));
            Assert.That(await OwnerAsync(fs.M("private")), Is.EqualTo($"{RangeA + 1000}:{RangeA + 1000}"));
        });

        // An owner outside the range (a host id the sandbox has no name for) is refused, as the kernel would.
        var (code, output) = await GovernedMountTests.RunAsync("chown", "1000", fs.M("rootfile"));
        Assert.That((code, output), Is.Not.EqualTo((0, string.Empty)));
        Assert.That(output, Does.Contain("Invalid argument"));

        var user = await AsAsync(RangeA + 1000, $"""
            m = '{fs.Target}'
            attempt('read-own', lambda: open(m + '/private').read())
            attempt('create', lambda: open(m + '/shared/mine', 'w').write('x') and None)
            attempt('read-staff', lambda: open(m + '/staff').read())
            """);
        var grouped = await AsAsync(RangeA + 1001, $"attempt('read-staff', lambda: open('{fs.M("staff")}').read())", RangeA + 50);
        var other = await AsAsync(RangeA + 1001, $"attempt('read-private', lambda: open('{fs.M("private")}').read())");
        var rangeRoot = await AsAsync(RangeA, $"attempt('read-private', lambda: open('{fs.M("private")}').read())");
        var outsider = await AsAsync(4242, $"attempt('create', lambda: open('{fs.M("shared/outsider")}', 'w').close())");
        await Assert.MultipleAsync(async () =>
        {
            Assert.That(user["read-own"], Is.EqualTo("p"), "uid 1000 of the sandbox owns what is stored as 1000");
            Assert.That(user["create"], Is.EqualTo("ok"));
            Assert.That(user["read-staff"], Is.EqualTo("EACCES"), "not in the group");
            Assert.That(grouped["read-staff"], Is.EqualTo("group"), "a supplementary group of the range counts as the sandbox's group 50");
            Assert.That(other["read-private"], Is.EqualTo("EACCES"), "another user of the sandbox");
            Assert.That(rangeRoot["read-private"], Is.EqualTo("p"), "the range's root is root");
            Assert.That(outsider["create"], Is.EqualTo("ok"), "the directory is world-writable");
            Assert.That(await OwnerAsync(Path.Combine(fs.Source, "shared/mine")), Is.EqualTo("1000:1000"), "stored as the sandbox's own id");
            Assert.That(await OwnerAsync(fs.M("shared/mine")), Is.EqualTo($"{RangeA + 1000}:{RangeA + 1000}"));
            Assert.That(await OwnerAsync(Path.Combine(fs.Source, "shared/outsider")), Is.EqualTo("65534:65534"), "a caller from outside the range acts as nobody");
        });
    }

    [Test]
    public async Task Files_stored_by_one_range_show_the_same_owners_in_another()
    {
        // What a sandbox with range A left in its workspace (the sandbox's own ids), and a file a host
        // user put there with an id no sandbox has.
        void Earlier(string source)
        {
            foreach (var (name, uid) in new[] { ("by-root", 0), ("by-user", 1000), ("by-nobody", 65534), ("by-host-user", 70000) })
            {
                var path = Path.Combine(source, name);
                File.WriteAllText(path, name);
                Hive.Interop.Libc.fchownat(Hive.Interop.Libc.AT_FDCWD, path, (uint)uid, (uint)uid + 1, 0);
            }
        }

        await using var fs = await SbxFuseProcess.StartAsync(prepare: Earlier, extraArgs: Map(RangeB));
        await Assert.MultipleAsync(async () =>
        {
            Assert.That(await OwnerAsync(fs.M("by-root")), Is.EqualTo($"{RangeB}:{RangeB + 1}"));
            Assert.That(await OwnerAsync(fs.M("by-user")), Is.EqualTo($"{RangeB + 1000}:{RangeB + 1001}"));
            Assert.That(await OwnerAsync(fs.M("by-nobody")), Is.EqualTo($"{RangeB + 65534}:{RangeB + 65535}"));
            Assert.That(await OwnerAsync(fs.M("by-host-user")), Is.EqualTo($"{RangeB + 65534}:{RangeB + 65534}"), "an id the sandbox cannot name is nobody's");
        });
    }
}
