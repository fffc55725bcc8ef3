using System.Runtime.InteropServices;
using Hive.Interop;
using Hive.Interop.Fuse;

namespace Hive.SbxFuse.Backing;

/// <summary>
/// The directory a mount stores its files in, touched only through descriptors: every operation
/// opens the entry's parent with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the root
/// descriptor and then acts on the last name with an *at call that does not follow symlinks. The
/// tree is written by the untrusted agent; no symlink or ".." it plants can make this process
/// touch anything outside it.
/// </summary>
internal sealed unsafe class BackingTree : IDisposable
{
    /// <summary>O_ACCMODE, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NONBLOCK, O_DSYNC, O_SYNC, O_LARGEFILE, O_DIRECTORY, O_NOATIME.</summary>
    private const int OpenFlagsPassedThrough = 0x3 | 0x40 | 0x80 | 0x200 | 0x400 | 0x800 | 0x1000 | 0x101000 | 0x8000 | 0x10000 | 0x40000;

    private const ulong Strict = Libc.RESOLVE_BENEATH | Libc.RESOLVE_NO_SYMLINKS | Libc.RESOLVE_NO_MAGICLINKS | Libc.RESOLVE_NO_XDEV;

    /// <summary>Opens <paramref name="root"/> by path (standalone use and the benchmarks; Sbxd hands over a descriptor).</summary>
    public BackingTree(string root)
    {
        Root = Path.GetFullPath(root);
        RootFd = Libc.openat2(Libc.AT_FDCWD, Root, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, 0);
        if (RootFd < 0)
        {
            throw SyscallException.FromLastError("openat2", Root);
        }
    }

    /// <summary>
    /// Serves the directory behind an inherited descriptor: Sbxd resolved the workspace root beneath
    /// the operator's directory without following links and checked its identity, so no path is
    /// looked up again here, where a sandbox sharing a parent could have swapped it meanwhile.
    /// </summary>
    public BackingTree(int fd)
    {
        Root = "/proc/self/fd/" + fd.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var stat = default(Stat);
        if (Libc.fstat(fd, &stat) != 0)
        {
            throw SyscallException.FromLastError("fstat", Root);
        }

        if ((stat.Mode & 0xF000) != 0x4000)
        {
            throw new IOException($"descriptor {fd} is not a directory");
        }

        Libc.SetCloseOnExec(fd, true);
        RootFd = fd;
    }

    public string Root { get; }

    /// <summary>
    /// Fails unless the root is the directory with this device and inode (what was recorded when
    /// the workspace was created): a directory replaced since — by another, or by a symlink to
    /// somewhere else — is never served.
    /// </summary>
    public void RequireIdentity(ulong device, ulong inode)
    {
        if (!Libc.TryIdentity(RootFd, out var dev, out var ino))
        {
            throw SyscallException.FromLastError("fstat", Root);
        }

        if (dev != device || ino != inode)
        {
            throw new IOException($"the workspace root is not the directory it was created as (device:inode {dev}:{ino}, expected {device}:{inode})");
        }
    }

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
