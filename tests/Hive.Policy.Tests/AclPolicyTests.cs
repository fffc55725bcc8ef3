using Hive.Policy.Fs;

namespace Hive.Policy.Tests;

public sealed class AclPolicyTests
{
    private static readonly AclPolicy Workspace = AclPolicy.Parse("/workspace",
    [
        new("/workspace/**", Access.ReadWrite),
        new("/workspace/inputs/**", Access.ReadOnly),
        new("/workspace/secrets/**", Access.Deny),
        new("/workspace/**/*.env", Access.Deny),
        new("/workspace/secrets/public/**", Access.ReadOnly),
    ]);

    [TestCase("/workspace", Access.ReadWrite)]
    [TestCase("/workspace/src/main.rs", Access.ReadWrite)]
    [TestCase("/workspace/inputs", Access.ReadOnly, TestName = "a subtree rule covers its directory")]
    [TestCase("/workspace/inputs/data/x.csv", Access.ReadOnly)]
    [TestCase("/workspace/secrets", Access.Deny)]
    [TestCase("/workspace/secrets/key.pem", Access.Deny)]
    [TestCase("/workspace/secrets/public/readme", Access.ReadOnly, TestName = "a deeper subtree rule beats a shallower one")]
    [TestCase("/workspace/.env", Access.Deny)]
    [TestCase("/workspace/inputs/prod.env", Access.Deny, TestName = "a rule naming the entry beats a subtree rule")]
    [TestCase("/workspace/app.environment", Access.ReadWrite)]
    [TestCase("/workspaces/x", Access.Deny, TestName = "a prefix of a name is not a parent")]
    [TestCase("/etc/passwd", Access.Deny, TestName = "outside every rule: denied")]
    public void Most_specific_rule_decides(string path, Access expected) => Assert.That(Workspace.Decide(path), Is.EqualTo(expected));

    [TestCase("/workspace/../etc/passwd")]
    [TestCase("/workspace/./x")]
    [TestCase("/workspace//x")]
    [TestCase("/workspace/x/")]
    [TestCase("workspace/x")]
    [TestCase("/workspace/x\0y")]
    public void Unnormalized_paths_are_denied(string path) => Assert.That(Workspace.Decide(path), Is.EqualTo(Access.Deny));

    [TestCase("/", true)]
    [TestCase("/a", true)]
    [TestCase("/a/b", true)]
    [TestCase("/..a", true)]
    [TestCase("/a.", true)]
    [TestCase("/...", true)]
    [TestCase("/.env", true)]
    [TestCase("", false)]
    [TestCase("a", false)]
    [TestCase("//", false)]
    [TestCase("/a/", false)]
    [TestCase("/a//b", false)]
    [TestCase("/.", false)]
    [TestCase("/..", false)]
    [TestCase("/a/.", false)]
    [TestCase("/a/..", false)]
    [TestCase("/a/./b", false)]
    [TestCase("/a/../b", false)]
    [TestCase("/a\0", false)]
    [TestCase("/\0/b", false)]
    public void Normal_form_is_absolute_without_empty_dot_or_dotdot_segments(string path, bool normalized) =>
        Assert.That(AclPolicy.IsNormalized(path), Is.EqualTo(normalized));

    [Test]
    public void Ties_go_to_the_later_rule()
    {
        var policy = AclPolicy.Parse("/w", [new("/w/**", Access.ReadWrite), new("/w/**", Access.ReadOnly)]);
        Assert.That(policy.Decide("/w/a"), Is.EqualTo(Access.ReadOnly));
        var reversed = AclPolicy.Parse("/w", [new("/w/**", Access.ReadOnly), new("/w/**", Access.ReadWrite)]);
        Assert.That(reversed.Decide("/w/a"), Is.EqualTo(Access.ReadWrite));
    }

    [Test]
    public void Omitted_acls_mean_the_mount_is_read_write()
    {
        var policy = AclPolicy.Default("/workspace");
        Assert.That(policy.Decide("/workspace/a/b"), Is.EqualTo(Access.ReadWrite));
        Assert.That(policy.Decide("/workspace"), Is.EqualTo(Access.ReadWrite));
        Assert.That(policy.Decide("/other"), Is.EqualTo(Access.Deny));
    }

    [TestCase("/w/*.txt", "/w/a.txt", true)]
    [TestCase("/w/*.txt", "/w/d/a.txt", false, TestName = "star stays within a segment")]
    [TestCase("/w/**/*.txt", "/w/a.txt", true, TestName = "globstar matches zero segments")]
    [TestCase("/w/**/*.txt", "/w/d/e/a.txt", true)]
    [TestCase("/w/?.md", "/w/a.md", true)]
    [TestCase("/w/?.md", "/w/ab.md", false)]
    [TestCase("/w/a.b", "/w/aXb", false, TestName = "dots are literal")]
    [TestCase("/w/**", "/w", true)]
    [TestCase("/w/**", "/wx", false)]
    [TestCase("/w/(x)+", "/w/(x)+", true, TestName = "regex metacharacters are literal")]
    public void Globs(string pattern, string path, bool matches)
    {
        Assert.That(PathGlob.TryParse(pattern, out var glob, out var error), Is.True, error);
        Assert.That(glob!.IsMatch(path), Is.EqualTo(matches));
    }

    [TestCase("relative/**")]
    [TestCase("/w/../x")]
    [TestCase("/w/a**b")]
    [TestCase("/w/[ab]")]
    [TestCase("/w//x")]
    [TestCase("/w/")]
    public void Bad_patterns_are_rejected(string pattern) => Assert.That(PathGlob.TryParse(pattern, out _, out var error), Is.False, error);

    [Test]
    public void Every_problem_is_reported_at_once_and_rules_stay_inside_the_mount()
    {
        var ex = Assert.Throws<AclException>(() => AclPolicy.Parse("/workspace", [new("/etc/**", Access.ReadOnly), new("/workspace/[x]", Access.Deny), new("/workspace/ok/**", Access.ReadWrite)]))!;
        Assert.That(ex.Message, Does.Contain("acls[0]").And.Contain("outside the mount").And.Contain("acls[1]"));
        Assert.That(ex.Message, Does.Not.Contain("acls[2]"));
    }

    [TestCase("rw", Access.ReadWrite)]
    [TestCase("ro", Access.ReadOnly)]
    [TestCase("deny", Access.Deny)]
    public void Access_names_round_trip(string name, Access access)
    {
        Assert.That(AccessNames.TryParse(name, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(access));
        Assert.That(access.Name(), Is.EqualTo(name));
    }
}
