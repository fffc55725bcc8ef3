using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Hive.Interop;

/// <summary>
/// The new mount API's idmapped mounts (open_tree(2), mount_setattr(2); Linux 5.12+, glibc 2.36) and
/// the namespace ioctls (ioctl_ns(2)) that tell which user namespace owns another namespace.
/// </summary>
/// <remarks>
/// An idmapped mount shows a directory tree with its owners shifted through a user namespace's
/// mapping: with <c>0 BASE 65536</c>, a file owned by host uid k shows as owned by BASE + k. Hive
/// clones an image's root filesystem that way, per sandbox, as the overlay's lower layer: the image
/// stays one shared, read-only copy on disk, and inside the sandbox's user namespace it belongs to
/// the sandbox's own root. The clone is detached (never attached to any path), handed to overlayfs
/// as <c>/proc/self/fd/N</c> like every other layer, and lives on in the overlay's private copy.
/// util-linux's <c>X-mount.idmap</c> option is silently ignored on this host, hence the system calls.
/// </remarks>
public static unsafe partial class Libc
{
    /// <summary>open_tree(2): a detached copy of the mount (a bind mount nobody can see yet).</summary>
    public const uint OPEN_TREE_CLONE = 1;

    /// <summary>open_tree(2): the descriptor is close-on-exec (O_CLOEXEC).</summary>
    public const uint OPEN_TREE_CLOEXEC = 0x80000;

    /// <summary>mount_setattr(2): give the mount the id mapping of <see cref="MountAttr.UsernsFd"/>.</summary>
    public const ulong MOUNT_ATTR_IDMAP = 0x00100000;

    /// <summary>ioctl_ns(2) NS_GET_USERNS = _IO(0xb7, 0x1): the user namespace that owns a namespace.</summary>
    private const ulong NS_GET_USERNS = 0xb701;

    [LibraryImport("libc", EntryPoint = "open_tree", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open_tree(int dirfd, string path, uint flags);

    [LibraryImport("libc", EntryPoint = "mount_setattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount_setattr(SafeFileHandle dirfd, string path, uint flags, MountAttr* attr, nuint size);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int ioctl_ns(SafeFileHandle fd, ulong request);

    /// <summary>
    /// A detached clone of the directory tree at <paramref name="path"/> whose owners are mapped through
    /// the user namespace behind <paramref name="userNamespace"/> (an open <c>/proc/PID/ns/user</c> or a
    /// bind mount of one). The handle names the mount; <see cref="ProcFdPath"/> gives it to overlayfs.
    /// </summary>
    /// <exception cref="SyscallException">open_tree or mount_setattr failed (EINVAL: the file system cannot be idmapped).</exception>
    public static SafeFileHandle OpenIdmappedTree(string path, SafeFileHandle userNamespace)
    {
        var fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (fd < 0)
        {
            throw SyscallException.FromLastError("open_tree(OPEN_TREE_CLONE)", path);
        }

        var tree = new SafeFileHandle(fd, ownsHandle: true);
        var attr = new MountAttr { AttrSet = MOUNT_ATTR_IDMAP, UsernsFd = (ulong)userNamespace.DangerousGetHandle() };
        if (mount_setattr(tree, string.Empty, AT_EMPTY_PATH, &attr, (nuint)sizeof(MountAttr)) != 0)
        {
            var error = Marshal.GetLastPInvokeError();
            tree.Dispose();
            throw new SyscallException("mount_setattr(MOUNT_ATTR_IDMAP)", error, path);
        }

        return tree;
    }

    /// <summary>Opens a namespace file (<c>/proc/PID/ns/*</c> or a bind mount of one), close-on-exec.</summary>
    public static SafeFileHandle OpenNamespace(string path)
    {
        var fd = openat2(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0, 0);
        if (fd < 0)
        {
            throw SyscallException.FromLastError("open", path);
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The identity (device, inode) of the namespace behind <paramref name="ns"/>; false if fstat failed.</summary>
    public static bool TryIdentity(SafeFileHandle ns, out ulong device, out ulong inode) =>
        TryIdentity((int)ns.DangerousGetHandle(), out device, out inode);

    /// <summary>
    /// The identity (device, inode) of the user namespace that owns the namespace behind
    /// <paramref name="ns"/> (e.g. a network namespace file), or false when the kernel will not say.
    /// </summary>
    public static bool TryOwningUserNamespace(SafeFileHandle ns, out ulong device, out ulong inode)
    {
        device = inode = 0;
        var fd = ioctl_ns(ns, NS_GET_USERNS);
        if (fd < 0)
        {
            return false;
        }

        using var owner = new SafeFileHandle(fd, ownsHandle: true);
        return TryIdentity(fd, out device, out inode);
    }

    /// <summary>struct mount_attr (linux/mount.h), 32 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MountAttr
    {
        public ulong AttrSet;
        public ulong AttrClr;
        public ulong Propagation;
        public ulong UsernsFd;
    }
}
