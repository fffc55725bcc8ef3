using System.Text.Json;

namespace Hive.SbxFuse.Tests;

/// <summary>
/// What SbxFuse lets the kernel skip, and that nothing a program can observe changes because of it:
/// set-ID clearing taken over from the kernel (no security.capability question per write),
/// write-only handles that bypass the page cache, and entries made by create/mkdir/symlink answered
/// without a second lookup or event.
/// </summary>
[CancelAfter(120_000)]
public sealed class KernelCachingTests
{
    private static List<JsonElement> Of(List<JsonElement> audit, string kind, string path) =>
        audit.Where(e => e.GetProperty("kind").GetString() == kind && e.GetProperty("path").GetString() == path).ToList();

    [Test]
    public async Task Set_id_bits_are_cleared_on_write_and_writes_do_not_ask_for_capabilities()
    {
        await using var fs = await SbxFuseProcess.StartAsync(prepare: source =>
        {
            File.WriteAllText(Path.Combine(source, "tool"), "#!/bin/sh\n");
            File.SetUnixFileMode(Path.Combine(source, "tool"), (UnixFileMode)0b110_111_101_101); // 06755, planted on the host
            File.WriteAllText(Path.Combine(source, "data"), new string('.', 200));
        });
        Assert.That((int)File.GetUnixFileMode(fs.M("tool")) & 0xC00, Is.EqualTo(0xC00), "served as stored");

        var (code, output) = await GovernedMountTests.RunAsync("python3", "-c", $"""
            import os
            fd = os.open('{fs.M("tool")}', os.O_RDWR)
            os.pwrite(fd, b'#', 100)
            os.close(fd)
            print(oct(os.stat('{fs.M("tool")}').st_mode & 0o7777))
            fd = os.open('{fs.M("data")}', os.O_RDWR)
            for i in range(3):
                os.pwrite(fd, b'#', 100 + i)
            os.close(fd)
            fd = os.open('{fs.M("log")}', os.O_WRONLY | os.O_CREAT, 0o644)
            for i in range(3):
                os.write(fd, b'line\n')
            os.close(fd)
            """);
        Assert.That(code, Is.Zero, output);
        Assert.That(output.Trim(), Is.EqualTo("0o755"), "writing through the mount drops set-user-ID and set-group-ID");
        Assert.That(File.GetUnixFileMode(Path.Combine(fs.Source, "tool")) & (UnixFileMode.SetUser | UnixFileMode.SetGroup), Is.EqualTo((UnixFileMode)0), "and so does the stored file");

        var audit = await fs.AuditAsync();
        Assert.That(Of(audit, "fs.write", "/workspace/data"), Has.Count.EqualTo(3));
        Assert.That(Of(audit, "fs.write", "/workspace/log"), Has.Count.EqualTo(3));

        // Without FUSE_HANDLE_KILLPRIV_V2 the kernel asks for security.capability before every write(2).
        Assert.That(Of(audit, "fs.getxattr", "/workspace/data"), Has.Count.EqualTo(1), "only the first write of a cached handle asks");
        Assert.That(Of(audit, "fs.getxattr", "/workspace/log"), Is.Empty, "write-only handles never ask");
        Assert.That(fs.Stderr, Does.Contain("no security.capability lookup per write"));
    }

    [Test]
    public async Task Readers_see_what_write_only_handles_wrote()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        var (code, output) = await GovernedMountTests.RunAsync("python3", "-c", $"""
            import os
            p = '{fs.M("data.txt")}'
            with open(p, 'w') as f:
                f.write('aaaa' * 1024)
            reader = os.open(p, os.O_RDONLY)             # unbuffered: what the kernel returns
            print(os.pread(reader, 8, 0).decode())        # now in the page cache
            with open(p, 'r+b') as f:                     # read-write: through the cache
                f.write(b'bbbb')
            print(os.pread(reader, 8, 0).decode())
            fd = os.open(p, os.O_WRONLY)                  # write-only: direct to SbxFuse
            os.pwrite(fd, b'cccc', 4)
            os.close(fd)
            print(os.pread(reader, 8, 0).decode())
            print(open(p, 'rb').read(12).decode())        # a new open sees it too
            with open(p, 'w') as f:                       # truncate and rewrite, same size
                f.write('dddd' * 1024)
            print(open(p, 'rb').read(8).decode(), os.stat(p).st_size)
            """);
        Assert.That(code, Is.Zero, output);
        Assert.That(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "aaaaaaaa", "bbbbaaaa", "bbbbcccc", "bbbbccccaaaa", "dddddddd 4096" }));
        Assert.That(await File.ReadAllTextAsync(Path.Combine(fs.Source, "data.txt")), Is.EqualTo(new string('d', 4096)));
    }

    [Test]
    public async Task A_made_entry_is_one_event_and_its_attributes_are_right()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        var (code, output) = await GovernedMountTests.RunAsync("python3", "-c", $"""
            import os
            os.mkdir('{fs.M("dir")}', 0o750)
            fd = os.open('{fs.M("dir/new")}', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            st = os.fstat(fd); os.close(fd)
            os.symlink('new', '{fs.M("dir/link")}')
            print(oct(os.stat('{fs.M("dir")}').st_mode), oct(st.st_mode), st.st_size, os.readlink('{fs.M("dir/link")}'))
            print(os.stat('{fs.M("dir/new")}').st_ino == os.stat('{Path.Combine(fs.Source, "dir", "new")}').st_ino)
            """);
        Assert.That(code, Is.Zero, output);
        Assert.That(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "0o40750 0o100640 0 new", "True" }));

        var audit = await fs.AuditAsync();
        foreach (var (kind, path) in new[] { ("fs.mkdir", "/workspace/dir"), ("fs.create", "/workspace/dir/new"), ("fs.symlink", "/workspace/dir/link") })
        {
            Assert.That(Of(audit, kind, path), Has.Count.EqualTo(1), kind);

            // The kernel's own miss before the entry existed is recorded (ENOENT); no successful getattr
            // of the new entry follows from making it.
            var made = audit.FindIndex(e => e.GetProperty("kind").GetString() == kind && e.GetProperty("path").GetString() == path);
            Assert.That(audit.Skip(made + 1).Take(1).Where(e => e.GetProperty("kind").GetString() == "fs.getattr" && e.GetProperty("path").GetString() == path), Is.Empty, $"{kind}: no second lookup");
        }
    }
}
