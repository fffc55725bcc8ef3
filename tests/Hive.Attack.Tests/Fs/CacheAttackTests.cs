using System.Text;

namespace Hive.Attack.Tests.Fs;

/// <summary>
/// Keeping what the kernel cached while the rules were looser: a handle opened before the rules are
/// tightened (PATCH), pages mapped before, a name and its attributes looked up before.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class CacheAttackTests
{
    /// <summary>
    /// Inside the sandbox, in the background: opens the file, reads it and maps it (so the kernel
    /// caches pages, attributes and the name), says READY, waits for GO, tries once more and writes
    /// the outcome ("OK", an errno name, or SIGBUS for a refused page fault of the mapping).
    /// </summary>
    private const string Holder = """
        import errno, mmap, os, sys, time
        mode, path, tag = sys.argv[1], sys.argv[2], sys.argv[3]
        fd = os.open(path, os.O_RDONLY)
        assert os.pread(fd, 6, 0) == b'cached'
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        assert m[:6] == b'cached'
        assert os.stat(path).st_size == 6
        open(tag + '.ready', 'w').close()
        while not os.path.exists(tag + '.go'):
            time.sleep(0.02)
        def attempt(f):
            try:
                f()
                return 'OK'
            except OSError as e:
                return errno.errorcode[e.errno]
        if mode == 'read':
            result = attempt(lambda: os.pread(fd, 6, 0))
        elif mode == 'stat':
            result = attempt(lambda: os.stat(path))
        else:
            pid = os.fork()
            if pid == 0:
                os._exit(0 if m[:6] == b'cached' else 1)
            _, status = os.waitpid(pid, 0)
            result = 'SIGBUS' if os.WIFSIGNALED(status) and os.WTERMSIG(status) == 7 else 'exit %d' % os.WEXITSTATUS(status)
        open(tag + '.result', 'w').write(result)
        """;

    [TestCase("read", "fs", TestName = "Open_then_tighten_read_through_the_same_handle_is_refused")]
    [TestCase("mmap", "fs.read", TestName = "Mmap_then_tighten_page_fault_is_refused")]
    [TestCase("stat", "fs.getattr", TestName = "Stat_then_tighten_cached_name_is_decided_again")]
    [Defence("an ACL change invalidates the kernel's caches: page cache and attributes of open files, every cached name")]
    public async Task Cached_access_after_tightening_is_decided_again(string mode, string kind)
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var file = $"/c/{mode}-{Guid.NewGuid().ToString("N")[..6]}.txt";
        var tag = "/tmp/hold-" + mode;
        var script = Convert.ToBase64String(Encoding.UTF8.GetBytes(Holder));
        var (exit, _, stderr) = await FsSandboxes.ShAsync(sandbox, $"printf cached > {file} && echo {script} | base64 -d > {tag}.py && rm -f {tag}.ready {tag}.go {tag}.result && (setsid python3 {tag}.py {mode} {file} {tag} > {tag}.log 2>&1 < /dev/null &)");
        Assert.That(exit, Is.Zero, stderr);
        await UntilAsync(sandbox, $"test -e {tag}.ready", $"cat {tag}.log");

        await FsSandboxes.Controller.PatchAsync(sandbox, new { fs = new[] { new { mount = "/c", acls = new object[] { new { path = "/c/**", access = "rw" }, new { path = file, access = "deny" } } } } });
        await FsSandboxes.ShAsync(sandbox, $"touch {tag}.go");
        var result = await UntilAsync(sandbox, $"cat {tag}.result", $"cat {tag}.log");

        Assert.That(result, Is.EqualTo(mode == "mmap" ? "SIGBUS" : "EACCES"), "nothing is served from what was cached before the change");
        // A read through the handle asks for the (dropped) attributes first, or reads the (dropped) pages: either is decided.
        Assert.That(await FsSandboxes.DeniedAsync(sandbox, kind, file, 13), Is.Not.Null, "the attempt is decided and recorded");
    }

    /// <summary>Runs <paramref name="command"/> in the sandbox until it succeeds (60 s at most); its output.</summary>
    private static async Task<string> UntilAsync(string sandbox, string command, string diagnostics)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var (exit, stdout, _) = await FsSandboxes.ShAsync(sandbox, command);
            if (exit == 0)
            {
                return stdout;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"'{command}' never succeeded: " + (await FsSandboxes.ShAsync(sandbox, diagnostics)).Stdout);
            }

            await Task.Delay(100);
        }
    }
}
