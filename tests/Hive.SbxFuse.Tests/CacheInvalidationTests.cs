using System.Text.Json;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.SbxFuse.Tests;

/// <summary>
/// After the rules are tightened nothing is served from what the kernel cached under the old ones:
/// reads through a handle opened before, pages mapped before, names and attributes looked up before.
/// </summary>
[CancelAfter(120_000)]
public sealed class CacheInvalidationTests
{
    /// <summary>
    /// Reads everything once (into the kernel's caches), creates <c>READY</c>, waits until <c>GO</c>
    /// exists (both on the host, outside the mount), then tries again and prints the outcome of each
    /// attempt ("ok:..." or "errno:N"; the mapping is touched in a child, which a refused page fault
    /// kills with SIGBUS).
    /// </summary>
    internal static string Script(string file, string other, string handshake) => $$"""
        import mmap, os, sys, time
        fd = os.open('{{file}}', os.O_RDONLY)
        assert os.pread(fd, 6, 0) == b'cached'
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        assert m[:6] == b'cached'
        assert os.stat('{{other}}').st_size == 5
        open('{{handshake}}/READY', 'w').close()
        while not os.path.exists('{{handshake}}/GO'):
            time.sleep(0.02)
        def attempt(f):
            try:
                return 'ok:' + str(f())
            except OSError as e:
                return 'errno:%d' % e.errno
        print('read', attempt(lambda: os.pread(fd, 6, 0)))
        print('fstat', attempt(lambda: os.fstat(fd).st_size))
        print('stat', attempt(lambda: os.stat('{{other}}').st_size))
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            os.write(1, b'mapped ' + m[:6] + b'\n')
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print('mmap', ('signal:%d' % os.WTERMSIG(status)) if os.WIFSIGNALED(status) else 'exit:%d' % os.WEXITSTATUS(status))
        """;

    [Test]
    public async Task Tightening_reaches_open_handles_mapped_pages_and_cached_names()
    {
        await using var fs = await SbxFuseProcess.StartAsync([new { path = "/workspace/**", access = "rw" }], prepare: source =>
        {
            File.WriteAllText(Path.Combine(source, "open.txt"), "cached");
            File.WriteAllText(Path.Combine(source, "name.txt"), "12345");
        });
        var outcome = await RunAcrossChangeAsync(handshake => Script(fs.M("open.txt"), fs.M("name.txt"), handshake), async () =>
        {
            using var control = GrpcChannel.ForUnixSocket(fs.ControlSocket);
            var set = new SetAclsRequest();
            set.Rules.Add(new FsAclRule { Path = "/workspace/**", Access = "rw" });
            set.Rules.Add(new FsAclRule { Path = "/workspace/*.txt", Access = "deny" });
            await control.UnaryAsync<SetAclsRequest, SetAclsResponse>("/hive.v1.FsControl/SetAcls", set);
        });
        var lines = outcome.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Does.Contain("read errno:13"), "a read through a handle opened before is decided again");
        Assert.That(lines, Does.Contain("fstat errno:13"), "so are its attributes");
        Assert.That(lines, Does.Contain("stat errno:13"), "a name looked up before is looked up again");
        Assert.That(lines, Does.Contain("mmap signal:7"), "a page mapped before faults and is refused (SIGBUS)");
        Assert.That(lines, Has.None.StartsWith("mapped"), "nothing was read through the mapping");

        var audit = await fs.AuditAsync();
        Assert.That(Denied(audit, "fs.read", "/workspace/open.txt"), Is.GreaterThanOrEqualTo(2), "the handle's read and the page fault are recorded as denied");
        Assert.That(Denied(audit, "fs.getattr", "/workspace/open.txt"), Is.GreaterThanOrEqualTo(1), "the handle's fstat is recorded as denied");
        Assert.That(Denied(audit, "fs.getattr", "/workspace/name.txt"), Is.GreaterThanOrEqualTo(1), "the cached name's stat is recorded as denied");
        Assert.That(fs.Stderr, Does.Contain("every cached name made stale").And.Contain("of 1 open file(s) dropped"));
    }

    internal static int Denied(List<JsonElement> audit, string kind, string path) =>
        audit.Count(e => e.GetProperty("kind").GetString() == kind && e.GetProperty("path").GetString() == path && e.GetProperty("decision").GetString() == "deny" && e.GetProperty("errno").GetInt32() == 13);

    /// <summary>Runs a python script up to its READY file, makes <paramref name="change"/>, creates GO, returns what it printed.</summary>
    internal static async Task<string> RunAcrossChangeAsync(Func<string, string> script, Func<Task> change)
    {
        var handshake = Directory.CreateTempSubdirectory("hive-handshake-").FullName;
        try
        {
            var run = GovernedMountTests.RunAsync("python3", "-c", script(handshake));
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!File.Exists(Path.Combine(handshake, "READY")))
            {
                Assert.That(run.IsCompleted, Is.False, () => "the script ended early: " + run.Result.Output);
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the script did not get ready");
                await Task.Delay(20);
            }

            await change();
            await File.WriteAllTextAsync(Path.Combine(handshake, "GO"), string.Empty);
            var (code, output) = await run;
            Assert.That(code, Is.Zero, output);
            return output;
        }
        finally
        {
            Directory.Delete(handshake, recursive: true);
        }
    }
}
