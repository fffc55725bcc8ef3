using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Hive.Interop;
using Hive.Interop.Fuse;
using Hive.Policy.Fs;
using Hive.SbxFuse.Audit;
using Hive.SbxFuse.Backing;

namespace Hive.SbxFuse.Fs;

/// <summary>
/// What every FUSE operation does: decide by ACL on the logical path (the mount point inside the
/// sandbox + the path FUSE hands us, which the kernel has already resolved), perform it on the
/// backing tree through descriptors, record it, and return 0/bytes or a negative errno.
/// Denied → EACCES, writes under read-only → EROFS, an operation the audit log cannot record → EIO.
/// </summary>
internal sealed unsafe class GovernedFileSystem(BackingTree tree, AuditLog audit, string mount, AclPolicy policy)
{
    private volatile AclPolicy _policy = policy;

    public AclPolicy Policy
    {
        get => _policy;
        set => _policy = value;
    }

    public string Logical(string fusePath) => fusePath == "/" ? mount : mount == "/" ? fusePath : mount + fusePath;

    public int Getattr(string path, Stat* stat)
    {
        var start = Stopwatch.GetTimestamp();
        if (Deny(path, write: false, out var logical, out var decision) is { } denied)
        {
            return Done("getattr", logical, decision, denied, 0, start);
        }

        var (fd, name, error) = tree.Parent(path);
        if (error != 0)
        {
            return Done("getattr", logical, decision, error, 0, start);
        }

        var rc = Libc.fstatat(fd, name, stat, Libc.AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -Errno();
        tree.Release(fd);
        return Done("getattr", logical, decision, rc, 0, start);
    }

    public int Readlink(string path, byte* buffer, nuint size)
    {
        var start = Stopwatch.GetTimestamp();
        if (Deny(path, write: false, out var logical, out var decision) is { } denied)
        {
            return Done("readlink", logical, decision, denied, 0, start);
        }

        var (fd, name, error) = tree.Parent(path);
        if (error != 0)
        {
            return Done("readlink", logical, decision, error, 0, start);
        }

        var n = Libc.readlinkat(fd, name, buffer, size - 1);
        var rc = n < 0 ? -Errno() : 0;
        if (n >= 0)
        {
            buffer[n] = 0;
        }

        tree.Release(fd);
        return Done("readlink", logical, decision, rc, 0, start);
    }

    public int Mkdir(string path, uint mode) => AtWrite("mkdir", path, (fd, name) => Libc.mkdirat(fd, name, mode));

    public int Unlink(string path) => AtWrite("unlink", path, (fd, name) => Libc.unlinkat(fd, name, 0));

    public int Rmdir(string path) => AtWrite("rmdir", path, (fd, name) => Libc.unlinkat(fd, name, Libc.AT_REMOVEDIR));

    public int Chmod(string path, uint mode) => AtWrite("chmod", path, (fd, name) => Libc.fchmodat(fd, name, mode, 0));

    public int Chown(string path, uint uid, uint gid) => AtWrite("chown", path, (fd, name) => Libc.fchownat(fd, name, uid, gid, Libc.AT_SYMLINK_NOFOLLOW));

    public int Utimens(string path, Timespec* times)
    {
        var copy = stackalloc Timespec[2];
        copy[0] = times[0];
        copy[1] = times[1];
        var captured = (nint)copy;
        return AtWrite("utimens", path, (fd, name) => Libc.utimensat(fd, name, (Timespec*)captured, Libc.AT_SYMLINK_NOFOLLOW));
    }

    public int Symlink(string target, string path) =>
        AtWrite("symlink", path, (fd, name) => Libc.symlinkat(target, fd, name), target);

    public int Rename(string from, string to, uint flags)
    {
        var start = Stopwatch.GetTimestamp();
        var logicalTo = Logical(to);
        var denied = Deny(from, write: true, out var logical, out var decision);
        if (denied is null)
        {
            denied = Deny(to, write: true, out _, out decision);
        }

        if (denied is { } rejected)
        {
            return Done("rename", logical, decision, rejected, 0, start, logicalTo);
        }

        var (fromFd, fromName, e1) = tree.Parent(from);
        var (toFd, toName, e2) = tree.Parent(to);
        var rc = e1 != 0 ? e1 : e2 != 0 ? e2 : Libc.renameat2(fromFd, fromName, toFd, toName, flags) == 0 ? 0 : -Errno();
        tree.Release(fromFd);
        tree.Release(toFd);
        return Done("rename", logical, decision, rc, 0, start, logicalTo);
    }

    public int Link(string from, string to)
    {
        var start = Stopwatch.GetTimestamp();
        var logicalFrom = Logical(from);

        // A hard link makes the same data reachable under a new name: both names must be writable.
        var denied = Deny(from, write: true, out _, out var decision);
        if (denied is null)
        {
            denied = Deny(to, write: true, out _, out decision);
        }

        if (denied is { } rejected)
        {
            return Done("link", Logical(to), decision, rejected, 0, start, logicalFrom);
        }

        var (fromFd, fromName, e1) = tree.Parent(from);
        var (toFd, toName, e2) = tree.Parent(to);
        var rc = e1 != 0 ? e1 : e2 != 0 ? e2 : Libc.linkat(fromFd, fromName, toFd, toName, 0) == 0 ? 0 : -Errno();
        tree.Release(fromFd);
        tree.Release(toFd);
        return Done("link", Logical(to), decision, rc, 0, start, logicalFrom);
    }

    public int Truncate(string path, long size, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        if (Deny(path, write: true, out var logical, out var decision) is { } denied)
        {
            return Done("truncate", logical, decision, denied, 0, start);
        }

        int rc;
        if (fi is not null && fi->Fh != 0)
        {
            rc = Libc.ftruncate((int)fi->Fh, size) == 0 ? 0 : -Errno();
        }
        else
        {
            var fd = tree.Open(path, Libc.O_WRONLY, 0);
            rc = fd < 0 ? fd : Libc.ftruncate(fd, size) == 0 ? 0 : -Errno();
            if (fd >= 0)
            {
                Libc.close(fd);
            }
        }

        return Done("truncate", logical, decision, rc, size, start);
    }

    public int Open(string path, FuseFileInfo* fi) => OpenOrCreate("open", path, fi->Flags, 0, fi);

    public int Create(string path, uint mode, FuseFileInfo* fi) => OpenOrCreate("create", path, fi->Flags | Libc.O_CREAT, mode, fi);

    public int Read(string path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var logical = Logical(path);

        // Re-checked per operation: a hot-reloaded rule applies to handles that are already open.
        if (_policy.Decide(logical) == Access.Deny)
        {
            return Done("read", logical, "deny", -Libc.EACCES, 0, start);
        }

        var n = Libc.pread((int)fi->Fh, buffer, size, offset);
        return Done("read", logical, "allow", n < 0 ? -Errno() : (int)n, Math.Max(0, n), start);
    }

    public int Write(string path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var logical = Logical(path);
        var access = _policy.Decide(logical);
        if (access != Access.ReadWrite)
        {
            return Done("write", logical, access.Name(), access == Access.Deny ? -Libc.EACCES : -Libc.EROFS, 0, start);
        }

        var n = Libc.pwrite((int)fi->Fh, buffer, size, offset);
        return Done("write", logical, "allow", n < 0 ? -Errno() : (int)n, Math.Max(0, n), start);
    }

    public int Statfs(StatVfs* stat) => Libc.fstatvfs(tree.RootFd, stat) == 0 ? 0 : -Errno();

    public int Flush(FuseFileInfo* fi) => 0;

    public int Release(string path, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        Libc.close((int)fi->Fh);
        return Done("release", Logical(path), "allow", 0, 0, start);
    }

    public int Fsync(int datasync, FuseFileInfo* fi) =>
        (datasync != 0 ? Libc.fdatasync((int)fi->Fh) : Libc.fsync((int)fi->Fh)) == 0 ? 0 : -Errno();

    public int Readdir(string path, void* buffer, delegate* unmanaged<void*, byte*, Stat*, long, int, int> filler)
    {
        var start = Stopwatch.GetTimestamp();
        if (Deny(path, write: false, out var logical, out var decision) is { } denied)
        {
            return Done("readdir", logical, decision, denied, 0, start);
        }

        var fd = tree.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY, 0);
        if (fd < 0)
        {
            return Done("readdir", logical, decision, fd, 0, start);
        }

        var dir = Libc.fdopendir(fd);
        if (dir is null)
        {
            var e = -Errno();
            Libc.close(fd);
            return Done("readdir", logical, decision, e, 0, start);
        }

        long count = 0;
        var policy = _policy;
        try
        {
            byte* entry;
            while ((entry = Libc.readdir(dir)) is not null)
            {
                var name = entry + 19;
                var nameString = Marshal.PtrToStringUTF8((nint)name) ?? string.Empty;
                if (nameString is not "." and not ".." && policy.Decide(logical == "/" ? "/" + nameString : logical + "/" + nameString) == Access.Deny)
                {
                    continue; // denied entries are not listed
                }

                filler(buffer, name, null, 0, 0);
                count++;
            }
        }
        finally
        {
            Libc.closedir(dir);
        }

        return Done("readdir", logical, decision, 0, count, start);
    }

    public int CheckAccess(string path, int mask)
    {
        var start = Stopwatch.GetTimestamp();
        var write = (mask & 2) != 0;
        if (Deny(path, write, out var logical, out var decision) is { } denied)
        {
            return Done("access", logical, decision, denied, 0, start);
        }

        return Done("access", logical, decision, 0, 0, start);
    }

    private int OpenOrCreate(string op, string path, int flags, uint mode, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var write = (flags & Libc.O_ACCMODE) != Libc.O_RDONLY || (flags & (Libc.O_CREAT | Libc.O_TRUNC)) != 0;
        if (Deny(path, write, out var logical, out var decision) is { } denied)
        {
            return Done(op, logical, decision, denied, 0, start);
        }

        var fd = tree.Open(path, flags & ~Libc.O_NOFOLLOW, mode);
        if (fd >= 0)
        {
            fi->Fh = (ulong)fd;
        }

        return Done(op, logical, decision, fd < 0 ? fd : 0, 0, start);
    }

    private int AtWrite(string op, string path, Func<int, string, int> action, string? target = null)
    {
        var start = Stopwatch.GetTimestamp();
        if (Deny(path, write: true, out var logical, out var decision) is { } denied)
        {
            return Done(op, logical, decision, denied, 0, start, target);
        }

        var (fd, name, error) = tree.Parent(path);
        if (error != 0)
        {
            return Done(op, logical, decision, error, 0, start, target);
        }

        var rc = action(fd, name) == 0 ? 0 : -Errno();
        tree.Release(fd);
        return Done(op, logical, decision, rc, 0, start, target);
    }

    /// <summary>Null when allowed; otherwise the negative errno to return.</summary>
    private int? Deny(string path, bool write, out string logical, out string decision)
    {
        logical = Logical(path);
        var access = _policy.Decide(logical);
        switch (access)
        {
            case Access.Deny:
                decision = "deny";
                return -Libc.EACCES;
            case Access.ReadOnly when write:
                decision = "deny-ro";
                return -Libc.EROFS;
            default:
                decision = "allow";
                return null;
        }
    }

    private int Done(string op, string logical, string decision, int result, long bytes, long start, string? target = null)
    {
        var micros = (long)Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        var recorded = audit.TryRecord(new FsEvent(op, logical, decision, bytes, micros, result < 0 ? -result : 0, target));
        return recorded ? result : -Libc.EIO;
    }

    private static int Errno() => Marshal.GetLastPInvokeError();
}
