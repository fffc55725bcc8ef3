using System.Diagnostics;

namespace Hive.SbxFuse.Tests;

/// <summary>ACLs and audit through a real FUSE mount (on the host, as the sandbox would see it).</summary>
[CancelAfter(120_000)]
public sealed class GovernedMountTests
{
    private static readonly object[] Rules =
    [
        new { path = "/workspace/**", access = "rw" },
        new { path = "/workspace/inputs/**", access = "ro" },
        new { path = "/workspace/secrets/**", access = "deny" },
    ];

    private static void Seed(string source)
    {
        Directory.CreateDirectory(Path.Combine(source, "inputs"));
        Directory.CreateDirectory(Path.Combine(source, "secrets"));
        File.WriteAllText(Path.Combine(source, "inputs", "data.csv"), "a,b\n");
        File.WriteAllText(Path.Combine(source, "secrets", "key.pem"), "KEY");
    }

    [Test]
    public async Task Read_write_and_metadata_on_a_read_write_path()
    {
        await using var fs = await SbxFuseProcess.StartAsync(Rules, prepare: Seed);
        await File.WriteAllTextAsync(fs.M("notes.txt"), "hello");
        await File.AppendAllTextAsync(fs.M("notes.txt"), " world");
        Assert.That(await File.ReadAllTextAsync(fs.M("notes.txt")), Is.EqualTo("hello world"));
        Assert.That(await File.ReadAllTextAsync(Path.Combine(fs.Source, "notes.txt")), Is.EqualTo("hello world"), "stored in the backing dir");
        Directory.CreateDirectory(fs.M("d/e"));
        File.Move(fs.M("notes.txt"), fs.M("d/e/moved.txt"));
        File.CreateSymbolicLink(fs.M("d/link"), "e/moved.txt");
        Assert.That(await File.ReadAllTextAsync(fs.M("d/link")), Is.EqualTo("hello world"));
        File.SetUnixFileMode(fs.M("d/e/moved.txt"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.That(File.GetUnixFileMode(fs.M("d/e/moved.txt")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        using (var stream = new FileStream(fs.M("d/e/moved.txt"), FileMode.Open, FileAccess.ReadWrite))
        {
            stream.SetLength(5);
        }

        Assert.That(await File.ReadAllTextAsync(fs.M("d/e/moved.txt")), Is.EqualTo("hello"));
        File.Delete(fs.M("d/link"));
        Directory.Delete(fs.M("d"), recursive: true);
        Assert.That(Directory.Exists(Path.Combine(fs.Source, "d")), Is.False);
    }

    [Test]
    public async Task Read_only_and_denied_paths()
    {
        await using var fs = await SbxFuseProcess.StartAsync(Rules, prepare: Seed);
        Assert.That(await File.ReadAllTextAsync(fs.M("inputs/data.csv")), Is.EqualTo("a,b\n"));
        var ro = Assert.Throws<IOException>(() => File.WriteAllText(fs.M("inputs/new.csv"), "x"))!;
        Assert.That(ro.Message, Does.Contain("Read-only"));
        Assert.Catch(() => File.AppendAllText(fs.M("inputs/data.csv"), "x"));
        Assert.Catch(() => File.Delete(fs.M("inputs/data.csv")));
        Assert.Catch(() => File.Move(fs.M("inputs/data.csv"), fs.M("stolen.csv")));
        Assert.Throws<UnauthorizedAccessException>(() => File.ReadAllText(fs.M("secrets/key.pem")));
        Assert.Catch(() => File.Move(fs.M("secrets/key.pem"), fs.M("key.pem")));
        Assert.Catch(() => File.CreateSymbolicLink(fs.M("secrets/x"), "/etc"));
        Assert.That(Directory.GetFileSystemEntries(fs.Target).Select(Path.GetFileName), Is.EquivalentTo(new[] { "inputs" }), "denied entries are hidden");
        Assert.That(await File.ReadAllTextAsync(Path.Combine(fs.Source, "inputs", "data.csv")), Is.EqualTo("a,b\n"), "nothing changed underneath");
    }

    [Test]
    public async Task Every_operation_is_audited_with_its_decision()
    {
        await using var fs = await SbxFuseProcess.StartAsync(Rules, prepare: Seed);
        await File.WriteAllTextAsync(fs.M("a.txt"), "12345");
        _ = await File.ReadAllTextAsync(fs.M("a.txt"));
        Assert.Catch(() => File.ReadAllText(fs.M("secrets/key.pem")));
        Assert.Catch(() => File.WriteAllText(fs.M("inputs/x"), "x"));
        var events = await fs.AuditAsync();
        Assert.That(events.Any(e => e.GetProperty("kind").GetString() == "fs.write" && e.GetProperty("path").GetString() == "/workspace/a.txt" && e.GetProperty("bytes").GetInt64() == 5));
        Assert.That(events.Any(e => e.GetProperty("kind").GetString() == "fs.read" && e.GetProperty("path").GetString() == "/workspace/a.txt" && e.GetProperty("bytes").GetInt64() == 5));
        // The kernel's lookup of the denied directory is already refused, before key.pem is reached.
        Assert.That(events.Any(e => e.GetProperty("path").GetString()!.StartsWith("/workspace/secrets", StringComparison.Ordinal) && e.GetProperty("decision").GetString() == "deny" && e.GetProperty("errno").GetInt32() == 13));
        Assert.That(events.Any(e => e.GetProperty("path").GetString() == "/workspace/inputs/x" && e.GetProperty("decision").GetString() == "deny-ro" && e.GetProperty("errno").GetInt32() == 30));
        Assert.That(events.All(e => e.GetProperty("mount").GetString() == "/workspace"));
    }

    [TestCase(false)]
    [TestCase(true, TestName = "Hot_reload_applies_to_open_handles(started under nohup: SIGHUP inherited ignored)")]
    public async Task Hot_reload_applies_to_open_handles(bool underNohup)
    {
        await using var fs = await SbxFuseProcess.StartAsync(Rules, prepare: Seed, underNohup: underNohup);
        await using var open = new FileStream(fs.M("live.txt"), FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite, 1, FileOptions.WriteThrough);
        open.Write("one"u8);
        open.Flush();
        await fs.WriteAclsAsync([new { path = "/workspace/**", access = "ro" }]);
        Assert.Catch(() =>
        {
            open.Write("two"u8);
            open.Flush();
        }, "tightened to ro: the already-open handle cannot write any more");
        await fs.WriteAclsAsync([new { path = "/workspace/**", access = "rw" }]);
        await File.WriteAllTextAsync(fs.M("after.txt"), "ok");
        Assert.That(await File.ReadAllTextAsync(fs.M("after.txt")), Is.EqualTo("ok"));
    }

    [Test]
    public async Task Git_and_sqlite_work_on_the_mount()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        var (code, output) = await RunAsync("/bin/sh", "-c", $"cd {fs.Target} && git init -q . && echo hi > f && git add f && git -c user.email=t@t -c user.name=t commit -q -m first && git log --oneline | wc -l");
        Assert.That(code, Is.Zero, output);
        Assert.That(output.Trim(), Is.EqualTo("1"));
        (code, output) = await RunAsync("python3", "-c", $"import sqlite3; c = sqlite3.connect('{fs.M("db.sqlite")}'); c.execute('pragma journal_mode=wal'); c.execute('create table t(x)'); c.executemany('insert into t values (?)', [(i,) for i in range(100)]); c.commit(); print(c.execute('select sum(x) from t').fetchone()[0])");
        Assert.That(code, Is.Zero, output);
        Assert.That(output.Trim(), Is.EqualTo("4950"));
        (code, output) = await RunAsync("/bin/sh", "-c", $"tar -C /usr/include -cf - linux | tar -C {fs.Target} -xf - && find {fs.Target}/linux -type f | wc -l && rm -rf {fs.Target}/linux");
        Assert.That(code, Is.Zero, output);
        Assert.That(int.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(100));
    }

    [Test]
    public async Task Audit_is_fail_closed()
    {
        var tiny = Directory.CreateTempSubdirectory("hive-audit-full-").FullName;
        var (mounted, _) = await RunAsync("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", tiny);
        Assert.That(mounted, Is.Zero);
        try
        {
            await using var fs = await SbxFuseProcess.StartAsync(spoolDir: Path.Combine(tiny, "spool"));
            await File.WriteAllTextAsync(Path.Combine(tiny, "filler"), new string('x', 60 * 1024));

            // With the spool's disk full, operations cannot be recorded and so must not happen.
            var failure = Assert.Catch(() =>
            {
                for (var i = 0; i < 200; i++)
                {
                    File.WriteAllText(fs.M($"f{i}.txt"), "data");
                }
            });
            Assert.That(failure, Is.Not.Null);
            File.Delete(Path.Combine(tiny, "filler"));
        }
        finally
        {
            await RunAsync("umount", tiny);
            Directory.Delete(tiny);
        }
    }

    internal static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        return (process.ExitCode, await stdout + await stderr);
    }
}
