using System.Runtime.InteropServices;

namespace Hive.Interop.Tests;

/// <summary>RESOLVE_BENEATH keeps every walk inside the starting directory, whatever symlinks the tree holds.</summary>
public sealed class OpenAt2Tests
{
    private string _root = null!;
    private int _rootFd;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("hive-openat2-").FullName;
        Directory.CreateDirectory(Path.Combine(_root, "dir"));
        File.WriteAllText(Path.Combine(_root, "dir", "file.txt"), "inside");
        File.CreateSymbolicLink(Path.Combine(_root, "abs-escape"), "/etc/hostname");
        File.CreateSymbolicLink(Path.Combine(_root, "dotdot-escape"), "../../../../etc/hostname");
        File.CreateSymbolicLink(Path.Combine(_root, "inside-link"), "dir/file.txt");
        Directory.CreateSymbolicLink(Path.Combine(_root, "dir-link"), "/etc");
        _rootFd = Libc.openat2(-100, _root, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, 0);
        Assert.That(_rootFd, Is.GreaterThanOrEqualTo(0));
    }

    [TearDown]
    public void TearDown()
    {
        Libc.close(_rootFd);
        Directory.Delete(_root, recursive: true);
    }

    private (int Fd, int Errno) Open(string path, ulong resolve)
    {
        var fd = Libc.openat2(_rootFd, path, Libc.O_RDONLY | Libc.O_CLOEXEC, 0, resolve);
        var errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        if (fd >= 0)
        {
            Libc.close(fd);
        }

        return (fd, errno);
    }

    [TestCase("dir/file.txt")]
    [TestCase("inside-link")]
    [TestCase("dir/../dir/file.txt")]
    public void Paths_inside_open(string path) => Assert.That(Open(path, Libc.RESOLVE_BENEATH | Libc.RESOLVE_NO_MAGICLINKS).Fd, Is.GreaterThanOrEqualTo(0));

    [TestCase("abs-escape")]
    [TestCase("dotdot-escape")]
    [TestCase("dir-link/hostname")]
    [TestCase("../etc/hostname")]
    [TestCase("/etc/hostname")]
    public void Escapes_are_refused(string path)
    {
        var (fd, errno) = Open(path, Libc.RESOLVE_BENEATH | Libc.RESOLVE_NO_MAGICLINKS);
        Assert.That(fd, Is.EqualTo(-1));
        Assert.That(errno, Is.EqualTo(Libc.EXDEV), "the kernel reports a walk out of the root as EXDEV");
    }

    [Test]
    public void No_symlinks_refuses_even_inside_links() =>
        Assert.That(Open("inside-link", Libc.RESOLVE_BENEATH | Libc.RESOLVE_NO_SYMLINKS).Errno, Is.EqualTo(Libc.ELOOP));
}
