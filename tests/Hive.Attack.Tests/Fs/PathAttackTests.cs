namespace Hive.Attack.Tests.Fs;

/// <summary>
/// Reaching a denied file, or the host, by another spelling: symlinks out of the mount or into a
/// denied path, "..", O_PATH descriptors, file handles, very long paths.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class PathAttackTests
{
    [Test]
    [Defence("symlinks are stored, never followed by SbxFuse; they resolve inside the sandbox's mount namespace")]
    public async Task Symlink_out_of_the_mount_resolves_inside_the_sandbox_not_on_the_host()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var hostSecret = Path.Combine(FsSandboxes.Roots, "host-only-" + Guid.NewGuid().ToString("N")[..8]);
        await File.WriteAllTextAsync(hostSecret, "HOST-SECRET");
        var backing = FsSandboxes.Backing(sandbox, "/w");
        try
        {
            var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + $$"""
                os.symlink('{{hostSecret}}', '/w/out-host')
                os.symlink('{{backing}}/private/a.txt', '/w/out-backing')
                os.symlink('../../../../../../../../{{hostSecret}}', '/w/out-dotdot')
                for name in ['out-host', 'out-backing', 'out-dotdot']:
                    print(attempt(lambda: open('/w/' + name).read()))
                """);
            Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { "ENOENT", "ENOENT", "ENOENT" }), "the targets are resolved in the sandbox, where those host paths do not exist");
            var link = new FileInfo(Path.Combine(backing, "out-host"));
            Assert.That(link.LinkTarget, Is.EqualTo(hostSecret), "on the host it is only a symlink in the backing directory");
            Assert.That(await File.ReadAllTextAsync(hostSecret), Is.EqualTo("HOST-SECRET"));
        }
        finally
        {
            File.Delete(hostSecret);
        }
    }

    [Test]
    [Defence("decisions are made on the path the kernel resolved: a symlink is decided on its target")]
    public async Task Symlink_into_a_denied_path_is_decided_on_its_target()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + """
            os.symlink('private/a.txt', '/w/peek')
            os.symlink('/w/private/a.txt', '/w/peek-abs')
            print(attempt(lambda: open('/w/peek').read()))
            print(attempt(lambda: open('/w/peek-abs').read()))
            """);
        Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { "EACCES", "EACCES" }));
        Assert.That(await FsSandboxes.DeniedAsync(sandbox, "fs.getattr", "/w/private/a.txt", 13), Is.Not.Null);
    }

    [TestCase("/w/plain/../private/a.txt")]
    [TestCase("/w/private/./a.txt")]
    [TestCase("/w//private///a.txt")]
    [TestCase("/w/cfg/../../w/private/a.txt")]
    [Defence("decisions are made on the path the kernel resolved (.., ., // are gone by then)")]
    public async Task Dot_dot_spellings_of_a_denied_file_are_refused(string spelling)
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + $"print(attempt(lambda: open('{spelling}').read()))");
        Assert.That(outcome, Is.EqualTo("EACCES"));
        Assert.That(await FsSandboxes.DeniedAsync(sandbox, "fs.getattr", "/w/private/a.txt", 13), Is.Not.Null);
    }

    [TestCase("O_PATH descriptor of the denied file", "print(attempt(lambda: os.open('/w/private/a.txt', os.O_PATH)))", "EACCES")]
    [TestCase("openat from an O_PATH descriptor of its directory", "d = os.open('/w/private', os.O_PATH | os.O_DIRECTORY)\nprint(attempt(lambda: os.open('a.txt', os.O_RDONLY, dir_fd=d)))", "EACCES")]
    [TestCase("reopen through /proc/self/fd of the directory", "d = os.open('/w/private', os.O_PATH | os.O_DIRECTORY)\nprint(attempt(lambda: os.open('/proc/self/fd/%d/a.txt' % d, os.O_RDONLY)))", "EACCES")]
    [TestCase("open_by_handle_at with a forged handle", "fh = (ctypes.c_ubyte * 24)(8, 0, 0, 0, 1, 0, 0, 0)\nmfd = os.open('/w', os.O_RDONLY | os.O_DIRECTORY)\nprint(raw(libc.open_by_handle_at(mfd, fh, 0)))", "EPERM")]
    [Defence("every lookup of a name is decided; file handles need a capability the sandbox lacks")]
    public async Task Descriptor_tricks_do_not_reach_a_denied_file(string attempt, string script, string expected)
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        Assert.That(await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + script), Is.EqualTo(expected), attempt);
        if (expected == "EACCES")
        {
            Assert.That(await FsSandboxes.DeniedAsync(sandbox, "fs.getattr", "/w/private/a.txt", 13), Is.Not.Null);
        }
    }

    [Test]
    [Defence("SbxFuse answers overlong names and paths with ENAMETOOLONG, recorded, and keeps serving")]
    public async Task Very_long_paths_are_refused_cleanly()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + """
            print(attempt(lambda: open('/w/' + 'n' * 300, 'w')))
            os.makedirs('/w/deep', exist_ok=True)
            os.chdir('/w/deep')
            result = 'OK'
            for i in range(40):
                result = attempt(lambda: os.mkdir('d' * 250))
                if result != 'OK':
                    break
                os.chdir('d' * 250)
            print(result)
            os.chdir('/')
            print('cfg' in os.listdir('/w'))
            """);
        try
        {
            Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { "ENAMETOOLONG", "ENAMETOOLONG", "True" }), "refused, and the mount still answers");
            var events = await FsSandboxes.Controller.WaitForEventsAsync(sandbox, list => list.Any(e => e.GetProperty("errno").GetInt32() == 36 && e.GetProperty("path").GetString()!.StartsWith("/w/deep/", StringComparison.Ordinal)), kind: "fs");
            Assert.That(events.Any(e => e.GetProperty("errno").GetInt32() == 36 && e.GetProperty("path").GetString()!.StartsWith("/w/deep/", StringComparison.Ordinal)), Is.True, "the refusal is on record");
        }
        finally
        {
            // On the host the tree is deeper than PATH_MAX below the data directory: removed from inside, where each path fits.
            var (exit, _, stderr) = await FsSandboxes.ShAsync(sandbox, "rm -rf /w/deep");
            Assert.That(exit, Is.Zero, stderr);
        }
    }
}
