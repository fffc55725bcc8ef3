using System.Security.Cryptography;
using System.Text.Json;

namespace Hive.SbxFuse.Tests;

/// <summary>
/// The ACL matrix operation by operation (exact errno), and the rest of the POSIX surface an agent's
/// tools rely on: artifacts with their hash, user xattrs, locks, unlink-while-open, renames of open files.
/// </summary>
[CancelAfter(120_000)]
public sealed class PosixSurfaceTests
{
    private static readonly object[] Rules =
    [
        new { path = "/workspace/**", access = "rw" },
        new { path = "/workspace/ro/**", access = "ro" },
        new { path = "/workspace/deny/**", access = "deny" },
    ];

    private static void Seed(string source)
    {
        foreach (var dir in new[] { "rw", "ro", "deny" })
        {
            Directory.CreateDirectory(Path.Combine(source, dir));
            File.WriteAllText(Path.Combine(source, dir, "file"), "content");
            File.WriteAllText(Path.Combine(source, dir, "other"), "other");
        }
    }

    /// <summary>One Python program runs every operation on each class of path and prints "op class errno".</summary>
    private const string MatrixScript = """
        import os, sys, errno
        root = sys.argv[1]
        def attempt(op, cls, fn):
            try:
                fn(); code = 0
            except OSError as e:
                code = e.errno
            print(op, cls, code)
        for cls in ("rw", "ro", "deny"):
            d = os.path.join(root, cls)
            f = os.path.join(d, "file")
            attempt("read", cls, lambda: open(f).read())
            attempt("write", cls, lambda: open(f, "a").write("x"))
            attempt("create", cls, lambda: open(os.path.join(d, "new"), "w").close())
            attempt("truncate", cls, lambda: os.truncate(f, 1))
            attempt("chmod", cls, lambda: os.chmod(f, 0o600))
            attempt("utime", cls, lambda: os.utime(f, (1, 1)))
            attempt("mkdir", cls, lambda: os.mkdir(os.path.join(d, "sub")))
            attempt("symlink", cls, lambda: os.symlink("file", os.path.join(d, "sym")))
            attempt("link", cls, lambda: os.link(f, os.path.join(d, "hard")))
            attempt("rename-within", cls, lambda: os.rename(os.path.join(d, "other"), os.path.join(d, "other2")))
            attempt("rename-out", cls, lambda: os.rename(f, os.path.join(root, "rw", "moved-" + cls)))
            src = os.path.join(root, "rw", "src-" + cls)
            open(src, "w").close()
            attempt("rename-in", cls, lambda: os.rename(src, os.path.join(d, "in")) if cls != "rw" else None)
            attempt("setxattr", cls, lambda: os.setxattr(os.path.join(d, "sub") if cls == "rw" else f, "user.k", b"v"))
            attempt("unlink", cls, lambda: os.unlink(os.path.join(d, "other2") if cls == "rw" else f))
            attempt("list", cls, lambda: os.listdir(d))
        """;

    [Test]
    public async Task Acl_matrix_gives_the_exact_errno_for_every_operation()
    {
        await using var fs = await SbxFuseProcess.StartAsync(Rules, prepare: Seed);
        var script = Path.Combine(fs.Root, "matrix.py");
        await File.WriteAllTextAsync(script, MatrixScript);
        var (code, output) = await GovernedMountTests.RunAsync("python3", script, fs.Target);
        Assert.That(code, Is.Zero, output);
        var results = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToDictionary(p => (p[0], p[1]), p => int.Parse(p[2], System.Globalization.CultureInfo.InvariantCulture));
        const int ok = 0, eacces = 13, erofs = 30;
        foreach (var op in new[] { "read", "write", "create", "truncate", "chmod", "utime", "mkdir", "symlink", "link", "rename-within", "rename-out", "setxattr", "unlink", "list" })
        {
            Assert.That(results[(op, "rw")], Is.EqualTo(ok), $"{op} on rw");
            Assert.That(results[(op, "deny")], Is.EqualTo(eacces), $"{op} on deny");
        }

        Assert.That(results[("read", "ro")], Is.EqualTo(ok));
        Assert.That(results[("list", "ro")], Is.EqualTo(ok));
        foreach (var op in new[] { "write", "create", "truncate", "chmod", "utime", "mkdir", "symlink", "link", "rename-within", "rename-out", "rename-in", "setxattr", "unlink" })
        {
            Assert.That(results[(op, "ro")], Is.EqualTo(erofs), $"{op} on ro");
        }

        Assert.That(results[("rename-in", "deny")], Is.EqualTo(eacces), "moving a file into a denied directory");
        Assert.That(await File.ReadAllTextAsync(Path.Combine(fs.Source, "ro", "file")), Is.EqualTo("content"), "ro file untouched");
        Assert.That(await File.ReadAllTextAsync(Path.Combine(fs.Source, "deny", "file")), Is.EqualTo("content"), "denied file untouched");
        Assert.That(Directory.GetFileSystemEntries(Path.Combine(fs.Source, "deny")).Select(Path.GetFileName), Is.EquivalentTo(new[] { "file", "other" }), "nothing created under deny");

        // Every refusal is on record with its decision (identical repeated ones as one event with a
        // count, written within the aggregation window: wait for it).
        static long Occurrences(JsonElement e) => e.TryGetProperty("count", out var c) ? c.GetInt64() : 1;
        static bool DeniedLookup(JsonElement e) => e.GetProperty("path").GetString() == "/workspace/deny" && Decision(e) == "deny" && e.GetProperty("errno").GetInt32() == 13;
        var audit = await WaitForAsync(fs, events => events.Where(DeniedLookup).Sum(Occurrences) >= 10);
        Assert.That(audit.Where(e => Decision(e) == "deny-ro").Sum(Occurrences), Is.GreaterThanOrEqualTo(13));
        Assert.That(audit.Any(e => e.GetProperty("kind").GetString() == "fs.link" && Decision(e) == "deny-ro"));
        // Under deny the kernel's lookup is refused first, so most attempts end there, on record.
        Assert.That(audit.Where(DeniedLookup).Sum(Occurrences), Is.GreaterThanOrEqualTo(10));
        Assert.That(audit.Any(e => e.GetProperty("kind").GetString() == "fs.setxattr" && e.GetProperty("path").GetString() == "/workspace/ro/file" && Decision(e) == "deny-ro"));
    }

    [Test]
    public async Task A_written_file_is_recorded_as_an_artifact_with_its_sha256()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        var data = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        await File.WriteAllBytesAsync(fs.M("out.bin"), data);
        _ = await File.ReadAllBytesAsync(fs.M("out.bin")); // reading does not make an artifact
        await File.WriteAllTextAsync(fs.M("small.txt"), "hello");
        var artifacts = await WaitForAsync(fs, events => events.Count(e => e.GetProperty("kind").GetString() == "artifact.written") >= 2);
        var big = artifacts.Single(e => e.GetProperty("kind").GetString() == "artifact.written" && e.GetProperty("path").GetString() == "/workspace/out.bin");
        Assert.That(big.GetProperty("size").GetInt64(), Is.EqualTo(data.Length));
        Assert.That(big.GetProperty("sha256").GetString(), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(data))));
        var small = artifacts.Single(e => e.GetProperty("kind").GetString() == "artifact.written" && e.GetProperty("path").GetString() == "/workspace/small.txt");
        Assert.That(small.GetProperty("sha256").GetString(), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData("hello"u8))));
        Assert.That(artifacts.Count(e => e.GetProperty("kind").GetString() == "artifact.written"), Is.EqualTo(2), "one per written file, none for reads");

        // Saved atomically (temporary file, then rename, as editors do): the artifact also gets the final name.
        await File.WriteAllTextAsync(fs.M(".report.md.tmp"), "# report");
        File.Move(fs.M(".report.md.tmp"), fs.M("report.md"));
        var saved = await WaitForAsync(fs, events => events.Any(e => e.GetProperty("kind").GetString() == "artifact.written" && e.GetProperty("path").GetString() == "/workspace/report.md"));
        var final = saved.Single(e => e.GetProperty("kind").GetString() == "artifact.written" && e.GetProperty("path").GetString() == "/workspace/report.md");
        Assert.That(final.GetProperty("sha256").GetString(), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData("# report"u8))));
        Assert.That(saved.FindIndex(e => e.GetProperty("kind").GetString() == "fs.rename"), Is.LessThan(saved.IndexOf(final)), "recorded after the rename");
    }

    [Test]
    public async Task User_xattrs_work_and_other_namespaces_are_refused()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        await File.WriteAllTextAsync(fs.M("x.txt"), "x");
        var (code, output) = await GovernedMountTests.RunAsync("python3", "-c", $"""
            import os, errno
            p = '{fs.M("x.txt")}'
            os.setxattr(p, 'user.origin', b'agent-7')
            print(os.getxattr(p, 'user.origin').decode(), sorted(os.listxattr(p)))
            for name in ('security.capability', 'trusted.x'):
                try:
                    os.setxattr(p, name, b'v'); print('set', name)
                except OSError as e:
                    print('refused', name, e.errno)
            os.removexattr(p, 'user.origin'); print(os.listxattr(p))
            os.chmod(p, 0o4755); print(oct(os.stat(p).st_mode & 0o7777))
            """);
        Assert.That(code, Is.Zero, output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines[0], Is.EqualTo("agent-7 ['user.origin']"));
        Assert.That(lines[1], Does.StartWith("refused security.capability"));
        Assert.That(lines[2], Does.StartWith("refused trusted.x"));
        Assert.That(lines[3], Is.EqualTo("[]"));
        Assert.That(lines[4], Is.EqualTo("0o755"), "set-uid bits are never stored");
    }

    [Test]
    public async Task Locks_unlink_while_open_and_renames_of_open_files()
    {
        await using var fs = await SbxFuseProcess.StartAsync(Rules, prepare: Seed);
        var (code, output) = await GovernedMountTests.RunAsync("python3", "-c", $"""
            import os, fcntl, subprocess, sys
            root = '{fs.Target}'
            # A lock held by this process blocks another process (git and sqlite rely on this).
            f = open(os.path.join(root, 'rw', 'lock'), 'w')
            fcntl.lockf(f, fcntl.LOCK_EX)
            other = subprocess.run([sys.executable, '-c', 'import fcntl; f = open("' + os.path.join(root, 'rw', 'lock') + '", "a")\ntry:\n  fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print("got")\nexcept OSError as e:\n  print("busy", e.errno)'], capture_output=True, text=True)
            print(other.stdout.strip())
            fcntl.flock(open(os.path.join(root, 'rw', 'lock')), fcntl.LOCK_SH | fcntl.LOCK_NB); print('flock ok')
            # Unlinked while open: the handle keeps working and nothing is left behind.
            g = open(os.path.join(root, 'rw', 'tmp'), 'w+')
            os.unlink(os.path.join(root, 'rw', 'tmp'))
            g.write('still here'); g.flush(); g.seek(0); print(g.read()); g.close()
            print(sorted(os.listdir(os.path.join(root, 'rw'))))
            """);
        Assert.That(code, Is.Zero, output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines[0], Is.EqualTo("busy 11"));
        Assert.That(lines[1], Is.EqualTo("flock ok"));
        Assert.That(lines[2], Is.EqualTo("still here"));
        Assert.That(lines[3], Is.EqualTo("['file', 'lock', 'other']"), "no .fuse_hidden leftovers");

        // An open handle follows its file across a rename: the rules of the new path apply to it.
        await using (var open = new FileStream(fs.M("rw/moving.txt"), FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite, 1, FileOptions.WriteThrough))
        {
            open.Write("one"u8);
            open.Flush();
            Directory.CreateDirectory(fs.M("rw/later"));
            File.Move(fs.M("rw/moving.txt"), fs.M("rw/later/moving.txt"));
            await fs.WriteAclsAsync([.. Rules, new { path = "/workspace/rw/later/**", access = "ro" }]);
            Assert.Catch(() =>
            {
                open.Write("two"u8);
                open.Flush();
            }, "the file now lives under a read-only rule");
        }

        Assert.That(await File.ReadAllTextAsync(Path.Combine(fs.Source, "rw", "later", "moving.txt")), Is.EqualTo("one"));
    }

    private static string? Decision(JsonElement e) => e.TryGetProperty("decision", out var d) ? d.GetString() : null;

    private static async Task<List<JsonElement>> WaitForAsync(SbxFuseProcess fs, Func<List<JsonElement>, bool> done)
    {
        // Release (where artifacts are recorded) reaches the daemon just after close() returns.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var events = await fs.AuditAsync();
            if (done(events) || DateTime.UtcNow > deadline)
            {
                return events;
            }

            await Task.Delay(50);
        }
    }
}
