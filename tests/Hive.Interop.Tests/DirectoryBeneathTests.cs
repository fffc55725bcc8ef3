namespace Hive.Interop.Tests;

/// <summary>Opening (and making) a directory beneath another one without following any link, and passing a descriptor to a child.</summary>
public sealed class DirectoryBeneathTests
{
    private string _root = null!;
    private int _rootFd;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("hive-beneath-").FullName;
        Directory.CreateDirectory(Path.Combine(_root, "a", "b"));
        File.WriteAllText(Path.Combine(_root, "a", "file"), "x");
        Directory.CreateSymbolicLink(Path.Combine(_root, "a", "to-etc"), "/etc");
        Directory.CreateSymbolicLink(Path.Combine(_root, "inner-link"), "a");
        _rootFd = Libc.openat2(Libc.AT_FDCWD, _root, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, 0);
        Assert.That(_rootFd, Is.GreaterThanOrEqualTo(0));
    }

    [TearDown]
    public void TearDown()
    {
        Libc.close(_rootFd);
        Directory.Delete(_root, recursive: true);
    }

    [Test]
    public void An_existing_directory_opens_with_its_identity()
    {
        var fd = Libc.OpenDirectoryBeneath(_rootFd, "a/b", create: false, 0, out _);
        Assert.That(fd, Is.GreaterThanOrEqualTo(0));
        Assert.That(Libc.TryIdentity(fd, out var device, out var inode), Is.True);
        Libc.close(fd);
        Assert.That(inode, Is.Not.Zero);
        Assert.That(device, Is.Not.Zero);
    }

    [TestCase("a/to-etc", Libc.ELOOP, "a/to-etc", TestName = "A_symlink_as_the_last_component_is_refused")]
    [TestCase("a/to-etc/ssl", Libc.ELOOP, "a/to-etc", TestName = "A_symlink_on_the_way_is_refused")]
    [TestCase("inner-link/b", Libc.ELOOP, "inner-link", TestName = "Even_a_symlink_that_stays_inside_is_refused")]
    [TestCase("a/file", Libc.ENOTDIR, "a/file", TestName = "A_file_is_not_a_directory")]
    [TestCase("a/../a", Libc.EINVAL, "a/..", TestName = "Dot_dot_is_refused")]
    [TestCase("missing/x", Libc.ENOENT, "missing", TestName = "A_missing_component_is_reported")]
    public void What_cannot_be_opened_says_where(string relative, int errno, string failedAt)
    {
        var fd = Libc.OpenDirectoryBeneath(_rootFd, relative, create: false, 0, out var where);
        Assert.That(fd, Is.EqualTo(-errno));
        Assert.That(where, Is.EqualTo(failedAt));
    }

    [Test]
    public void Missing_components_are_made_but_never_through_a_link()
    {
        var fd = Libc.OpenDirectoryBeneath(_rootFd, "a/new/deeper", create: true, 0x1c0, out _);
        Assert.That(fd, Is.GreaterThanOrEqualTo(0));
        Libc.close(fd);
        Assert.That(Directory.Exists(Path.Combine(_root, "a", "new", "deeper")), Is.True);
        Assert.That(Libc.OpenDirectoryBeneath(_rootFd, "a/to-etc/hive-must-not-exist", create: true, 0x1c0, out _), Is.EqualTo(-Libc.ELOOP));
        Assert.That(Directory.Exists("/etc/hive-must-not-exist"), Is.False);
    }

    [Test]
    public async Task A_descriptor_reaches_the_child_as_descriptor_3_and_no_other_process()
    {
        var fd = Libc.OpenDirectoryBeneath(_rootFd, "a/b", create: false, 0, out _);
        try
        {
            var marker = Path.Combine(_root, "seen");
            var exit = await DescriptorSpawn.RunAsync(["/bin/sh", "-c", "readlink /proc/self/fd/3 > \"$0\"", marker], fd, CancellationToken.None);
            Assert.That(exit, Is.Zero);
            Assert.That(File.ReadAllText(marker).Trim(), Is.EqualTo(Path.Combine(_root, "a", "b")));
            Assert.That(Libc.fcntl(fd, Libc.F_GETFD, 0) & Libc.FD_CLOEXEC, Is.EqualTo(Libc.FD_CLOEXEC), "ours keeps close-on-exec: no other child gets it");
        }
        finally
        {
            Libc.close(fd);
        }
    }
}
