namespace Hive.SbxFuse.Tests;

/// <summary>
/// POSIX permissions between users inside a sandbox, checked by the backing file system as the
/// calling user (the mount has no default_permissions): a process that is not root gets exactly
/// what its uid, gid and supplementary groups allow, even on entries the kernel has cached; root
/// keeps its overrides; and what a user creates belongs to it.
/// </summary>
[CancelAfter(120_000)]
public sealed class CallerPermissionTests
{
    private const int Nobody = 65534;

    /// <summary>Runs a Python script as uid/gid 65534 with the given supplementary groups; one "name=result" line per attempt.</summary>
    private static Task<Dictionary<string, string>> AsNobodyAsync(string script, params int[] groups) => AsUser.RunAsync(Nobody, script, [.. groups.Select(g => (uint)g)]);

    [Test]
    public async Task A_user_other_than_root_gets_what_the_modes_allow_and_owns_what_it_creates()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        File.SetUnixFileMode(fs.Root, (UnixFileMode)0b111_101_101); // the test's temp dir, so 65534 can reach the mount point

        // Made by root through the mount, then looked at once so the kernel has every entry cached.
        Directory.CreateDirectory(fs.M("private"));
        File.SetUnixFileMode(fs.M("private"), (UnixFileMode)0b111_000_000);
        File.WriteAllText(fs.M("private/notes"), "secret");
        File.SetUnixFileMode(fs.M("private/notes"), (UnixFileMode)0b110_100_100);
        Directory.CreateDirectory(fs.M("shared"));
        File.SetUnixFileMode(fs.M("shared"), (UnixFileMode)0b111_111_111);
        Directory.CreateDirectory(fs.M("sticky"));
        File.SetUnixFileMode(fs.M("sticky"), (UnixFileMode)0b1_111_111_111);
        File.WriteAllText(fs.M("sticky/roots"), "r");
        File.SetUnixFileMode(fs.M("sticky/roots"), (UnixFileMode)0b110_110_110);
        File.WriteAllText(fs.M("rootonly"), "r");
        File.SetUnixFileMode(fs.M("rootonly"), (UnixFileMode)0b110_000_000);
        File.WriteAllText(fs.M("staff"), "group");
        File.SetUnixFileMode(fs.M("staff"), (UnixFileMode)0b110_100_000);
        await GovernedMountTests.RunAsync("chgrp", "50", fs.M("staff"));
        var (code, output) = await GovernedMountTests.RunAsync("ls", "-lR", fs.Target);
        Assert.That(code, Is.Zero, output);

        var r = await AsNobodyAsync($"""
            m = '{fs.Target}'
            attempt('read-under-private', lambda: open(m + '/private/notes').read() and None)
            attempt('list-private', lambda: os.listdir(m + '/private') and None)
            attempt('chdir-private', lambda: os.chdir(m + '/private'))
            attempt('read-rootonly', lambda: open(m + '/rootonly').read() and None)
            attempt('access-w-rootonly', lambda: 'yes' if os.access(m + '/rootonly', os.W_OK) else 'no')
            attempt('create-top', lambda: open(m + '/mine', 'w').close())
            attempt('mkdir-top', lambda: os.mkdir(m + '/d'))
            attempt('create-shared', lambda: open(m + '/shared/mine', 'w').write('x') and None)
            attempt('mkdir-shared', lambda: os.mkdir(m + '/shared/dir'))
            attempt('chmod-own', lambda: os.chmod(m + '/shared/mine', 0o600))
            attempt('chmod-roots', lambda: os.chmod(m + '/rootonly', 0o666))
            attempt('chown-own-to-root', lambda: os.chown(m + '/shared/mine', 0, 0))
            attempt('unlink-sticky-roots', lambda: os.unlink(m + '/sticky/roots'))
            attempt('append-sticky-roots', lambda: open(m + '/sticky/roots', 'a').write('n') and None)
            attempt('rename-roots-file', lambda: os.rename(m + '/rootonly', m + '/shared/taken'))
            attempt('hardlink-roots-file', lambda: os.link(m + '/rootonly', m + '/shared/hl'))
            attempt('utime-roots-file', lambda: os.utime(m + '/rootonly', (0, 0)))
            attempt('read-staff', lambda: open(m + '/staff').read())
            """);
        Assert.Multiple(() =>
        {
            Assert.That(r["read-under-private"], Is.EqualTo("EACCES"), "search permission on a cached directory is checked");
            Assert.That(r["list-private"], Is.EqualTo("EACCES"));
            Assert.That(r["chdir-private"], Is.EqualTo("EACCES"));
            Assert.That(r["read-rootonly"], Is.EqualTo("EACCES"));
            Assert.That(r["access-w-rootonly"], Is.EqualTo("no"));
            Assert.That(r["create-top"], Is.EqualTo("EACCES"), "the workspace root is root's, 0755");
            Assert.That(r["mkdir-top"], Is.EqualTo("EACCES"));
            Assert.That(r["create-shared"], Is.EqualTo("ok"));
            Assert.That(r["mkdir-shared"], Is.EqualTo("ok"));
            Assert.That(r["chmod-own"], Is.EqualTo("ok"));
            Assert.That(r["chmod-roots"], Is.EqualTo("EPERM"));
            Assert.That(r["chown-own-to-root"], Is.EqualTo("EPERM"));
            Assert.That(r["unlink-sticky-roots"], Is.EqualTo("EPERM"), "the sticky bit protects other users' files");
            Assert.That(r["append-sticky-roots"], Is.EqualTo("ok"), "a world-writable file stays writable");
            Assert.That(r["rename-roots-file"], Is.EqualTo("EACCES"));
            Assert.That(r["hardlink-roots-file"], Is.EqualTo("EPERM"), "protected_hardlinks, as on any disk");
            Assert.That(r["utime-roots-file"], Is.EqualTo("EPERM"));
            Assert.That(r["read-staff"], Is.EqualTo("EACCES"), "not in group 50");
        });

        // What 65534 made is 65534's, on the mount and in the backing directory.
        foreach (var made in new[] { "shared/mine", "shared/dir" })
        {
            var (statCode, owner) = await GovernedMountTests.RunAsync("stat", "-c", "%u:%g", Path.Combine(fs.Source, made), fs.M(made));
            Assert.That((statCode, owner.Split('\n', StringSplitOptions.RemoveEmptyEntries)), Is.EqualTo((0, new[] { $"{Nobody}:{Nobody}", $"{Nobody}:{Nobody}" })), made);
        }

        Assert.That((int)File.GetUnixFileMode(fs.M("shared/mine")), Is.EqualTo(0b110_000_000));
        Assert.That(File.ReadAllText(fs.M("private/notes")), Is.EqualTo("secret"), "root still reads everything");
        Assert.That(File.Exists(fs.M("rootonly")) && !File.Exists(fs.M("shared/taken")));

        // Supplementary groups count: the same user in group 50 reads the group's file.
        var withGroup = await AsNobodyAsync($"attempt('read-staff', lambda: open('{fs.M("staff")}').read())", 50);
        Assert.That(withGroup["read-staff"], Is.EqualTo("group"));

        // Every refusal is on record as what it was: allowed by the ACLs, refused by the modes.
        var audit = await fs.AuditAsync();
        var open = audit.Where(e => e.GetProperty("kind").GetString() == "fs.open" && e.GetProperty("path").GetString() == "/workspace/private/notes").ToList();
        Assert.That(open.Select(e => e.GetProperty("errno").GetInt32()), Does.Contain(13), "EACCES recorded");
    }

    [Test]
    public async Task Writing_someone_elses_set_id_file_clears_the_bits()
    {
        await using var fs = await SbxFuseProcess.StartAsync(prepare: source =>
        {
            File.WriteAllText(Path.Combine(source, "tool"), "#!/bin/sh\n");
            File.SetUnixFileMode(Path.Combine(source, "tool"), (UnixFileMode)0b110_111_111_111); // 06777, root's, planted on the host
        });
        File.SetUnixFileMode(fs.Root, (UnixFileMode)0b111_101_101);

        // Also the mount's very first operation: SbxFuse opens its audit spool (host-only, 0700) as itself.
        var r = await AsNobodyAsync($"""
            p = '{fs.M("tool")}'
            attempt('write', lambda: os.write(os.open(p, os.O_WRONLY | os.O_APPEND), b'#') and None)
            attempt('mode', lambda: oct(os.stat(p).st_mode & 0o7777))
            """);
        Assert.That((r["write"], r["mode"]), Is.EqualTo(("ok", "0o777")), "cleared with SbxFuse's privilege: 65534 does not own the file");
        Assert.That(File.GetUnixFileMode(Path.Combine(fs.Source, "tool")) & (UnixFileMode.SetUser | UnixFileMode.SetGroup), Is.EqualTo((UnixFileMode)0));
    }

    [Test]
    public async Task Root_keeps_its_overrides_but_not_execute_on_files_without_an_x_bit()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        File.WriteAllText(fs.M("script"), "#!/bin/sh\necho ran\n");
        File.SetUnixFileMode(fs.M("script"), (UnixFileMode)0b110_000_000);
        var (code, output) = await GovernedMountTests.RunAsync("python3", "-c", $"""
            import os
            p = '{fs.M("script")}'
            print(os.access(p, os.R_OK | os.W_OK), os.access(p, os.X_OK))
            os.chmod(p, 0o700)
            print(os.access(p, os.X_OK))
            """);
        Assert.That(code, Is.Zero, output);
        Assert.That(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "True False", "True" }));
        var (ran, said) = await GovernedMountTests.RunAsync(fs.M("script"));
        Assert.That((ran, said.Trim()), Is.EqualTo((0, "ran")));
    }
}
