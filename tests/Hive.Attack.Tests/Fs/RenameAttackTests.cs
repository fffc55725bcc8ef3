namespace Hive.Attack.Tests.Fs;

/// <summary>
/// Moving a rule out from under a file: renaming a directory (plain, RENAME_NOREPLACE,
/// RENAME_EXCHANGE) so that what lies beneath it falls under other rules, and hard links that give
/// a file a second name. Rules of /w: private/*.txt denied, cfg/*.yaml read-only, vault/*.txt denied.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class RenameAttackTests
{
    private const int EXDEV = 18;

    /// <summary>renameat2 through ctypes; prints the outcome (needs <see cref="FsSandboxes.Prelude"/>).</summary>
    private static string Rename(string from, string to, int flags) =>
        $"print(raw(libc.renameat2(-100, b'{from}', -100, b'{to}', {flags})))\n";

    [TestCase(0, TestName = "Rename_of_an_ancestor_out_of_a_deny_rule_is_refused")]
    [TestCase(1, TestName = "Rename_noreplace_of_an_ancestor_out_of_a_deny_rule_is_refused")]
    [Defence("a rename that changes the decision for anything beneath the moved directory answers EXDEV")]
    public async Task Rename_of_an_ancestor_out_of_a_deny_rule_is_refused(int flags)
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var target = flags == 0 ? "/w/x" : "/w/y";
        Assert.That(await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + Rename("/w/private", target, flags)), Is.EqualTo("EXDEV"));

        // What the issue did: mv falls back to copying, and the denied file is neither listed nor read.
        var (exit, stdout, _) = await FsSandboxes.ShAsync(sandbox, $"mv /w/private {target} && cat {target}/a.txt");
        Assert.That(exit, Is.Not.Zero);
        Assert.That(stdout, Does.Not.Contain("SECRET"));
        Assert.That(File.ReadAllText(Path.Combine(FsSandboxes.Backing(sandbox, "/w"), "private", "a.txt")), Is.EqualTo("SECRET-A"), "still under its rule");
        Assert.That(await FsSandboxes.DeniedAsync(sandbox, "fs.rename", "/w/private", EXDEV), Is.Not.Null, "the refusal is recorded");
    }

    [Test]
    [Defence("a rename that changes the decision for anything beneath the moved directory answers EXDEV")]
    public async Task Rename_of_an_ancestor_out_of_a_read_only_rule_is_refused()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + Rename("/w/cfg", "/w/cfg-edit", 0) + """
            print(attempt(lambda: open('/w/cfg/app.yaml', 'a').write('mode: open\n')))
            print(attempt(lambda: open('/w/cfg-edit/app.yaml', 'a').write('mode: open\n')))
            """);
        Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { "EXDEV", "EROFS", "ENOENT" }));
        Assert.That(File.ReadAllText(Path.Combine(FsSandboxes.Backing(sandbox, "/w"), "cfg", "app.yaml")), Is.EqualTo("mode: safe\n"));
        Assert.That(await FsSandboxes.DeniedAsync(sandbox, "fs.rename", "/w/cfg", EXDEV), Is.Not.Null);
    }

    [Test]
    [Defence("a rename that changes the decision for anything beneath the moved directory answers EXDEV")]
    public async Task Rename_into_a_deny_area_is_refused()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + """
            os.makedirs('/w/stage', exist_ok=True)
            open('/w/stage/k.txt', 'w').write('kept')
            """ + "\n" + Rename("/w/stage", "/w/vault", 0));
        Assert.That(outcome, Is.EqualTo("EXDEV"));
        Assert.That(await FsSandboxes.DeniedAsync(sandbox, "fs.rename", "/w/stage", EXDEV), Is.Not.Null);
    }

    [Test]
    [Defence("RENAME_EXCHANGE is decided like a rename in both directions (EXDEV)")]
    public async Task Rename_exchange_of_a_prepared_directory_with_a_read_only_one_is_refused()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + """
            os.makedirs('/w/prepared', exist_ok=True)
            open('/w/prepared/app.yaml', 'w').write('mode: open\n')
            """ + "\n" + Rename("/w/prepared", "/w/cfg", 2) + """
            print(open('/w/cfg/app.yaml').read().strip())
            """);
        Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { "EXDEV", "mode: safe" }));
        Assert.That(await FsSandboxes.DeniedAsync(sandbox, "fs.rename", "/w/prepared", EXDEV), Is.Not.Null);
    }

    [Test]
    [Defence("a hard link needs both names writable; the denied name cannot even be looked up")]
    public async Task Hard_link_of_a_denied_file_into_an_allowed_place_is_refused()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + """
            print(attempt(lambda: os.link('/w/private/a.txt', '/w/stolen.txt')))
            print(os.path.exists('/w/stolen.txt'))
            """);
        Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { "EACCES", "False" }));
        Assert.That(await FsSandboxes.DeniedAsync(sandbox, "fs.getattr", "/w/private/a.txt", 13), Is.Not.Null);
    }

    [Test]
    [Defence("a hard link needs both names writable (EROFS into a read-only name)")]
    public async Task Hard_link_of_a_writable_file_into_a_read_only_place_is_refused()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + """
            open('/w/mine.yaml', 'w').write('mode: open\n')
            print(attempt(lambda: os.link('/w/mine.yaml', '/w/cfg/evil.yaml')))
            print(attempt(lambda: open('/w/cfg/evil.yaml', 'a').write('x')))
            """);
        Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { "EROFS", "EROFS" }));
        Assert.That(File.Exists(Path.Combine(FsSandboxes.Backing(sandbox, "/w"), "cfg", "evil.yaml")), Is.False);
        Assert.That(await FsSandboxes.DeniedAsync(sandbox, "fs.link", "/w/cfg/evil.yaml", 30), Is.Not.Null);
    }
}
