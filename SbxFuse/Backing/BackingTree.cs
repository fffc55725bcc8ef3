using System.Runtime.InteropServices;
using Hive.Interop;

namespace Hive.SbxFuse.Backing;

/// <summary>
/// The directory a mount stores its files in, touched only through descriptors: every operation
/// opens the entry's parent with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the root
/// descriptor and then acts on the last name with an *at call that does not follow symlinks. The
/// tree is written by the untrusted agent; no symlink or ".." it plants can make this process
/// touch anything outside it.
/// </summary>
internal sealed class BackingTree : IDisposable
{
    /// <summary>O_ACCMODE, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NONBLOCK, O_DSYNC, O_SYNC, O_LARGEFILE, O_DIRECTORY, O_NOATIME.</summary>
    private const int OpenFlagsPassedThrough = 0x3 | 0x40 | 0x80 | 0x200 | 0x400 | 0x800 | 0x1000 | 0x101000 | 0x8000 | 0x10000 | 0x40000;

    private const ulong Strict = Libc.RESOLVE_BENEATH | Libc.RESOLVE_NO_SYMLINKS | Libc.RESOLVE_NO_MAGICLINKS | Libc.RESOLVE_NO_XDEV;

    public BackingTree(string root)
    {
        Root = Path.GetFullPath(root);
        RootFd = Libc.openat2(Libc.AT_FDCWD, Root, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, 0);
        if (RootFd < 0)
        {
            throw SyscallException.FromLastError("openat2", Root);
        }
    }

    public string Root { get; }

    public int RootFd { get; }

    /// <summary>"/a/b/c" → ("a/b", "c"); "/" → (".", ".").</summary>
    public static (string Parent, string Name) Split(string fusePath)
    {
        var relative = fusePath.TrimStart('/');
        if (relative.Length == 0)
        {
            return (".", ".");
        }

        var slash = relative.LastIndexOf('/');
        return slash < 0 ? (".", relative) : (relative[..slash], relative[(slash + 1)..]);
    }

    /// <summary>Opens the parent directory of <paramref name="fusePath"/>; returns (fd, name) or a negative errno.</summary>
    public (int Fd, string Name, int Error) Parent(string fusePath)
    {
        var (parent, name) = Split(fusePath);
        if (parent == ".")
        {
            return (RootFd, name, 0);
        }

        var fd = Libc.openat2(RootFd, parent, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, Strict);
        return fd < 0 ? (-1, name, -Marshal.GetLastPInvokeError()) : (fd, name, 0);
    }

    /// <summary>Closes a descriptor from <see cref="Parent"/> (the root descriptor stays open).</summary>
    public void Release(int fd)
    {
        if (fd >= 0 && fd != RootFd)
        {
            Libc.close(fd);
        }
    }

    /// <summary>Opens the entry itself (never through a symlink); returns the descriptor or a negative errno.</summary>
    public int Open(string fusePath, int flags, uint mode)
    {
        var relative = fusePath.TrimStart('/');

        // openat2 rejects what plain open(2) ignores: file-type bits in mode, kernel-internal bits in flags.
        flags &= OpenFlagsPassedThrough;
        mode = (flags & Libc.O_CREAT) != 0 ? mode & 0xfff : 0;
        var fd = Libc.openat2(RootFd, relative.Length == 0 ? "." : relative, flags | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, mode, Strict);
        return fd < 0 ? -Marshal.GetLastPInvokeError() : fd;
    }

    public void Dispose() => Libc.close(RootFd);
}
